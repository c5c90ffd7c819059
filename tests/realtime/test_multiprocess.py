"""Two server processes sharing Redis (the bus) and the database."""

import pytest

from .clients import SioClient, WsClient

pytestmark = pytest.mark.django_db(transaction=True)


async def greeted(url: str, chat_user, **kwargs) -> SioClient:
    client = await SioClient().connect(url, token=chat_user.access, **kwargs)
    await client.next("group-chat-list")
    return client


async def test_message_sent_on_one_process_reaches_the_other_live_and_in_order(redis_server_pair, make_user):
    one, two = redis_server_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await greeted(one.url, alice)
    b = await greeted(two.url, bob)
    created = await a.call("create-personal-chat", {"Receiver": bob.id})
    chat_id = created["data"]["ChatId"]
    assert (await b.next("create-personal-chat-partner"))["ChatId"] == chat_id
    for i in range(50):
        await a.emit("send-personal-message", {"ChatId": chat_id, "Content": f"m{i}"})
    got = [await b.next("receive-personal-message") for _ in range(50)]
    assert [m["Content"] for m in got] == [f"m{i}" for i in range(50)]
    assert [m["Seq"] for m in got] == list(range(1, 51))
    await b.none("receive-personal-message", wait=0.3)
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "back"})  # also a -> b ack path
    await b.call("read-personal-message", {"ChatId": chat_id})
    assert (await a.next("read-personal-msg-ack"))["ChatId"] == chat_id
    await a.close()
    await b.close()


async def test_user_connected_to_both_processes_receives_on_both(redis_server_pair, make_user):
    one, two = redis_server_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await greeted(one.url, alice)
    b1 = await greeted(one.url, bob)
    b2 = await greeted(two.url, bob, transports=["polling"])
    ws_headers = {"Authorization": f"Bearer {bob.access}"}
    b3 = await WsClient().connect(two.url, headers=ws_headers)
    await b3.next("group-chat-list")
    chat_id = (await a.call("create-personal-chat", {"Receiver": bob.id}))["data"]["ChatId"]
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "everywhere"})
    for client in (b1, b2, b3):
        assert (await client.next("receive-personal-message"))["Content"] == "everywhere"
        await client.none("receive-personal-message", wait=0.2)  # exactly once per connection
    for client in (a, b1, b2, b3):
        await client.close()


async def test_a_disconnected_process_stops_receiving_a_users_events(redis_server_pair, make_user):
    one, two = redis_server_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await greeted(one.url, alice)
    b = await greeted(two.url, bob)
    chat_id = (await a.call("create-personal-chat", {"Receiver": bob.id}))["data"]["ChatId"]
    await b.close()
    b_again = await greeted(one.url, bob)  # Bob moved to process one
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "moved"})
    assert (await b_again.next("receive-personal-message"))["Content"] == "moved"
    await a.close()
    await b_again.close()


async def test_the_senders_other_devices_get_its_message_on_either_process(redis_server_pair, make_user):
    """The sender's own copy is left out only when no other connection of the sender exists
    anywhere: a second device on the other process, or on the same one, still gets it."""
    one, two = redis_server_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    a1 = await greeted(one.url, alice)
    b = await greeted(two.url, bob)
    chat_id = (await a1.call("create-personal-chat", {"Receiver": bob.id}))["data"]["ChatId"]
    await a1.call("send-personal-message", {"ChatId": chat_id, "Content": "alone"})
    assert (await b.next("receive-personal-message"))["Content"] == "alone"
    a2 = await greeted(two.url, alice)  # another process: only Redis can tell process one
    await a1.call("send-personal-message", {"ChatId": chat_id, "Content": "to two"})
    assert (await a2.next("message-sent"))["Content"] == "to two"
    await a1.none("message-sent", wait=0.2)  # never to the connection that sent it
    await a2.close()
    a3 = await greeted(one.url, alice)  # the same process
    await a1.call("send-personal-message", {"ChatId": chat_id, "Content": "to one"})
    assert (await a3.next("message-sent"))["Content"] == "to one"
    assert [(await b.next("receive-personal-message"))["Content"] for _ in range(2)] == ["to two", "to one"]
    for client in (a1, a3, b):
        await client.close()
