"""Two users, each with two devices on two server processes sharing Redis and the database:
receipts, unread counts, typing and presence arrive where they should and nowhere else, also
when one process is killed. Short timers (see conftest): transitions take well under a second.
"""

import asyncio
import time

import pytest

from accounts.models import User
from tests.realtime.clients import SioClient

from .conftest import ARRIVES, DEBOUNCE, HEARTBEAT, TTL, TYPING_MIN_INTERVAL, TYPING_TTL, device, kill, rest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_clients")]

QUIET = DEBOUNCE + 0.7  # no event within this long: none was published


def presence_log(client: SioClient, user_id: str) -> list[str]:
    return [data["State"] for name, data in client.log if name == "presence" and data["UserId"] == user_id]


async def next_presence_of(client: SioClient, user_id: str, timeout: float = ARRIVES) -> dict:
    while True:
        event = await client.next("presence", timeout=timeout)
        if event["UserId"] == user_id:
            return event


async def nothing(clients, *names: str, wait: float = 0.4) -> None:
    await asyncio.sleep(wait)
    for client in clients:
        for name in names:
            await client.none(name, wait=0)


@pytest.fixture
async def two_by_two(presence_pair, make_user):
    """Alice and Bob with a device on each process, a direct chat between them, and Carol (who
    shares nothing with them) on both processes."""
    one, two = presence_pair
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    a1, a2 = await device(one, alice), await device(two, alice)
    b1, b2 = await device(one, bob), await device(two, bob)
    c1, c2 = await device(one, carol), await device(two, carol)
    chat_id = (await a1.call("create-personal-chat", {"Receiver": bob.id}))["data"]["ChatId"]
    await b2.next("create-personal-chat-partner")
    return {
        "users": (alice, bob, carol),
        "alice": (a1, a2),
        "bob": (b1, b2),
        "carol": (c1, c2),
        "chat": chat_id,
    }


async def test_receipts_and_unread_counts_across_devices_and_processes(two_by_two, presence_pair):
    alice, bob, _carol = two_by_two["users"]
    (a1, a2), (b1, b2), carol = two_by_two["alice"], two_by_two["bob"], two_by_two["carol"]
    chat = two_by_two["chat"]
    sent = [
        (await b2.call("send-personal-message", {"ChatId": chat, "Content": f"m{i}"}))["data"]
        for i in range(3)
    ]
    for client in (a1, a2):
        assert [(await client.next("receive-personal-message"))["Seq"] for _ in range(3)] == [1, 2, 3]

    # Alice's phone (process two) receives them: Bob's devices see "delivered".
    assert (await a2.call("message-delivered", {"ChatId": chat}))["data"] == {"ChatId": chat, "Seq": 3}
    for client in (b1, b2):
        assert await client.next("message-delivered") == {"ChatId": chat, "UserId": alice.id, "Seq": 3}

    # Alice reads two on her laptop (process one): both her devices clear the count, both of
    # Bob's devices get the receipt.
    ack = await a1.call("mark-read", {"ChatId": chat, "LastMessageId": sent[1]["Id"]})
    assert ack["data"] == {"ChatId": chat, "Seq": 2, "Unread": 1}
    for client in (a1, a2):
        assert await client.next("unread") == {"ChatId": chat, "Unread": 1, "Total": 1, "Seq": 2}
    for client in (b1, b2):
        assert await client.next("read-personal-msg-ack") == {"ChatId": chat, "Reader": alice.id, "Seq": 2}

    # The rest, by seq, on the phone.
    await a2.call("read-personal-message", {"ChatId": chat, "Seq": 3})
    for client in (a1, a2):
        assert (await client.next("unread"))["Total"] == 0
    for client in (b1, b2):
        assert (await client.next("read-personal-msg-ack"))["Seq"] == 3

    seen = (await b1.call("fetch-seen-by", {"ChatId": chat, "MessageId": sent[2]["Id"]}))["data"]
    assert (seen["SeenBy"], seen["DeliveredTo"]) == ([{"UserId": alice.id, "Name": "Alice"}], [])
    # Nowhere else: not the reader's devices, not the sender's as counts, not Carol.
    await nothing((a1, a2), "read-personal-msg-ack", "message-delivered", wait=0.3)
    await nothing((b1, b2), "unread", wait=0)
    await nothing(
        carol, "unread", "read-personal-msg-ack", "message-delivered", "receive-personal-message", wait=0
    )


async def test_receipts_turned_off_on_one_process_apply_to_the_users_devices_on_both(
    two_by_two, presence_pair
):
    one, _two = presence_pair
    alice, bob, _carol = two_by_two["users"]
    (a1, a2), (b1, b2) = two_by_two["alice"], two_by_two["bob"]
    chat = two_by_two["chat"]
    status, _ = await rest(one, bob, "PATCH", "/api/users/me/settings", {"read_receipts_enabled": False})
    assert status == 200
    await asyncio.sleep(0.3)  # the settings event reaches both processes
    await a1.call("send-personal-message", {"ChatId": chat, "Content": "hi"})
    await b2.next("receive-personal-message")
    await b2.call("message-delivered", {"ChatId": chat})
    await b2.call("mark-read", {"ChatId": chat})
    for client in (b1, b2):
        assert (await client.next("unread"))["Unread"] == 0  # Bob's own counts still clear
    await b1.call("send-personal-message", {"ChatId": chat, "Content": "back"})
    await a2.next("receive-personal-message")
    await a2.call("mark-read", {"ChatId": chat})
    await a2.next("unread")
    # Bob sends no receipts and sees none, on either process.
    await nothing((a1, a2, b1, b2), "read-personal-msg-ack", "message-delivered", wait=0.5)
    assert (await b1.call("fetch-seen-by", {"ChatId": chat, "Seq": 2}))["error"][
        "code"
    ] == "permission_denied"


async def test_typing_reaches_the_other_members_devices_on_both_processes_only(two_by_two, presence_pair):
    alice, _bob, _carol = two_by_two["users"]
    (a1, a2), (b1, b2), carol = two_by_two["alice"], two_by_two["bob"], two_by_two["carol"]
    chat = two_by_two["chat"]
    assert (await a1.call("typing", {"ChatId": chat}))["data"]["Relayed"] is True
    expected = {"ChatId": chat, "UserId": alice.id, "UserName": "Alice", "ExpiresIn": TYPING_TTL}
    for client in (b1, b2):
        assert await client.next("typing") == expected
    # Rate limited: a burst of keystrokes is one event ...
    assert [(await a1.call("typing", {"ChatId": chat}))["data"]["Relayed"] for _ in range(3)] == [False] * 3
    await nothing((b1, b2), "typing", wait=0.3)
    # ... per connection: the phone may say it too.
    assert (await a2.call("typing", {"ChatId": chat}))["data"]["Relayed"] is True
    for client in (b1, b2):
        await client.next("typing")
    # No stop: the indicator expires by itself on the receivers. The server keeps no timer (no
    # stop-typing arrives), and a late stop after the expiry is not relayed.
    await asyncio.sleep(TYPING_TTL + 0.2)
    assert (await a1.call("stop-typing", {"ChatId": chat}))["data"]["Relayed"] is False
    await nothing((b1, b2), "stop-typing", wait=0.2)
    # Typing again after the interval is relayed again; stop reaches both devices.
    assert TYPING_TTL >= TYPING_MIN_INTERVAL
    assert (await a1.call("typing", {"ChatId": chat}))["data"]["Relayed"] is True
    assert (await a1.call("stop-typing", {"ChatId": chat}))["data"]["Relayed"] is True
    for client in (b1, b2):
        await client.next("typing")
        assert await client.next("stop-typing") == {"ChatId": chat, "UserId": alice.id}
    await nothing((a1, a2, *carol), "typing", "stop-typing", wait=0.2)


async def test_group_typing_reaches_the_other_members_only(presence_pair, make_user):
    one, two = presence_pair
    alice, bob, carol, dave = (make_user(n) for n in ("Alice", "Bob", "Carol", "Dave"))
    a1, a2 = await device(one, alice), await device(two, alice)
    b2, c1, d2 = await device(two, bob), await device(one, carol), await device(two, dave)
    created = await a1.call("create-group-chat", {"Name": "Team", "Participants": [bob.id, carol.id]})
    group_id = created["data"]["GroupId"]
    for client in (b2, c1):
        await client.next("create-group-chat-receiver")
    await asyncio.sleep(0.2)  # membership routing settles on both processes
    await a2.call("typing", {"ChatId": group_id})
    for client in (b2, c1):
        assert (await client.next("typing"))["ChatId"] == group_id
    await nothing((a1, a2, d2), "typing", wait=0.3)


async def test_presence_across_processes_is_the_best_device_and_is_debounced(presence_pair, make_user):
    one, two = presence_pair
    alice, carol, dave = make_user("Alice"), make_user("Carol"), make_user("Dave")
    c = await device(two, carol)
    d = await device(one, dave)  # shares no chat with Alice
    await c.call("create-personal-chat", {"Receiver": alice.id})

    a1 = await device(one, alice)
    assert (await next_presence_of(c, alice.id))["State"] == "foreground"
    a2 = await device(two, alice)
    await a1.call("presence-state", {"State": "background"})
    await asyncio.sleep(QUIET)  # the phone is still in the foreground: nothing changes
    assert presence_log(c, alice.id) == ["foreground"]
    await a2.call("presence-state", {"State": "background"})
    assert (await next_presence_of(c, alice.id))["State"] == "background"
    await a1.close()
    await asyncio.sleep(QUIET)  # still connected on process two
    assert presence_log(c, alice.id) == ["foreground", "background"]
    users = (await c.call("fetch-presence", {"UserIds": [alice.id]}))["data"]["Users"]
    assert users == [{"UserId": alice.id, "Online": True, "State": "background", "LastSeen": None}]
    await a2.close()
    offline = await next_presence_of(c, alice.id)
    assert (offline["Online"], offline["State"]) == (False, "offline")
    assert offline["LastSeen"] is not None
    assert presence_log(d, alice.id) == []


async def test_a_killed_process_takes_its_users_offline_within_the_ttl(doomed_pair, make_user):
    survivor, doomed = doomed_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await device(survivor, alice)
    await a.call("create-personal-chat", {"Receiver": bob.id})
    b1 = await device(doomed, bob)
    b2 = await device(doomed, bob)
    assert (await next_presence_of(a, bob.id))["State"] == "foreground"
    await b2.call("presence-state", {"State": "background"})  # one device left in the foreground
    killed_at = time.monotonic()
    kill(doomed)
    offline = await next_presence_of(a, bob.id, timeout=TTL + 2 * HEARTBEAT + DEBOUNCE + 3)
    took = time.monotonic() - killed_at
    assert (offline["State"], offline["Online"]) == ("offline", False)
    assert offline["LastSeen"] is not None
    assert took < TTL + 2 * HEARTBEAT + DEBOUNCE + 2, took
    assert presence_log(a, bob.id) == ["foreground", "offline"]
    users = (await a.call("fetch-presence", {"UserIds": [bob.id]}))["data"]["Users"]
    assert users == [{"UserId": bob.id, "Online": False, "State": "offline", "LastSeen": offline["LastSeen"]}]
    last_seen = await asyncio.to_thread(lambda: User.objects.get(pk=bob.user.pk).last_seen_at)
    assert last_seen is not None
    # Bob comes back on the surviving process: online again.
    await device(survivor, bob)
    assert (await next_presence_of(a, bob.id))["State"] == "foreground"
    assert not b1.sio.connected and not b2.sio.connected


async def test_hidden_presence_is_never_published_from_any_process(presence_pair, make_user):
    one, two = presence_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    await asyncio.to_thread(lambda: User.objects.filter(pk=bob.user.pk).update(presence_hidden=True))
    a = await device(one, alice)
    await a.call("create-personal-chat", {"Receiver": bob.id})
    b1, b2 = await device(one, bob), await device(two, bob)
    await b1.call("presence-state", {"State": "background"})
    await b2.close()
    await asyncio.sleep(QUIET)
    await b1.close()
    await asyncio.sleep(QUIET)
    assert presence_log(a, bob.id) == []
    status, body = await rest(two, alice, "GET", f"/api/presence/?user_ids={bob.id}")
    assert (status, body) == (
        200,
        {"results": [{"user_id": bob.id, "online": False, "state": "offline", "last_seen": None}]},
    )
