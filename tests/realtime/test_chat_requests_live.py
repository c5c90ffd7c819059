"""Chat requests over ExpressChat (docs/protocol.md §17), with real python-socketio clients
against a live server process: the request, nothing of it in the recipient's chat before
accepting, accept, decline, the lists, bad input."""

import pytest
from asgiref.sync import sync_to_async

from messaging import services

from .clients import expresschat as connect

pytestmark = pytest.mark.django_db(transaction=True)


async def test_request_accept_and_talk(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await connect(live_server_proc, alice), await connect(live_server_proc, bob)
    made = await a.call("send-chat-request", {"Receiver": bob.id})
    assert made["ok"] and made["data"]["Created"] is True and made["data"]["State"] == "pending"
    chat_id, request_id = made["data"]["ChatId"], made["data"]["RequestId"]
    pushed = await b.next("chat-request")
    assert (pushed["RequestId"], pushed["Requester"], pushed["State"]) == (
        request_id,
        {"Id": alice.id, "Name": "Alice"},
        "pending",
    )
    sent = await a.call("send-personal-message", {"ChatId": chat_id, "Content": "may I?"})
    assert sent["ok"], sent
    listed = await b.call("fetch-chat-requests", {})
    assert [(r["RequestId"], r["MessageCount"], r["LastMessage"]) for r in listed["data"]["Requests"]] == [
        (request_id, 1, "may I?")
    ]
    refused = await b.call("send-personal-message", {"ChatId": chat_id, "Content": "sneaking in"})
    assert refused["ok"] is False and refused["error"]["code"] == "not_found"
    assert (await a.call("accept-chat-request", {"RequestId": request_id}))["error"]["code"] == "not_found"

    accepted = await b.call("accept-chat-request", {"RequestId": request_id})
    assert accepted["ok"] and accepted["data"]["State"] == "accepted"
    told = await a.next("chat-request-accepted")
    assert told["RequestId"] == request_id and told["DecidedAt"]
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "thanks"})
    received = await b.next("receive-personal-message")
    # The first message Bob's socket got is the one after accepting: "may I?" never came live.
    assert received["Content"] == "thanks"
    assert b.names().count("receive-personal-message") == 1
    answer = await b.call("send-personal-message", {"ChatId": chat_id, "Content": "welcome"})
    assert answer["ok"]
    assert (await a.next("receive-personal-message"))["Content"] == "welcome"
    await a.close()
    await b.close()


async def test_decline_and_bad_input(live_server_proc, make_user):
    carol, bob = make_user("Carol"), make_user("Bob")
    c, b = await connect(live_server_proc, carol), await connect(live_server_proc, bob)
    made = (await c.call("send-chat-request", {"Receiver": bob.id}))["data"]
    await b.next("chat-request")
    declined = await b.call("decline-chat-request", {"RequestId": made["RequestId"]})
    assert declined["ok"] and declined["data"]["State"] == "declined"
    assert (await c.next("chat-request-declined"))["RequestId"] == made["RequestId"]
    after = await c.call("send-personal-message", {"ChatId": made["ChatId"], "Content": "please"})
    assert after["error"]["code"] == "not_found"
    again = await c.call("send-chat-request", {"Receiver": bob.id})
    assert again["error"]["code"] == "permission_denied"
    sent = await c.call("fetch-chat-requests", {"Box": "sent", "State": "declined"})
    assert [r["RequestId"] for r in sent["data"]["Requests"]] == [made["RequestId"]]
    for event, payload, code in (
        ("send-chat-request", {}, "invalid"),
        ("send-chat-request", {"Receiver": carol.id}, "invalid"),
        ("send-chat-request", {"Receiver": "f" * 24}, "not_found"),
        ("accept-chat-request", {"RequestId": 5}, "invalid"),
        ("decline-chat-request", {"RequestId": "nope"}, "not_found"),
        ("fetch-chat-requests", {"Box": "inbox"}, "invalid"),
        ("fetch-chat-requests", "not an object", "invalid"),
    ):
        answer = await c.call(event, payload)
        assert answer["ok"] is False and answer["error"]["code"] == code, (event, payload, answer)
    await c.close()
    await b.close()


async def test_leave_and_rejoin_a_chat_of_its_own(live_server_proc, make_user):
    """A chat that started as a request of its own (as seed 002's rooms make them): Bob leaves,
    Alice is told, nothing reaches Bob's socket until he rejoins, his sends are refused."""

    def own_chat() -> str:  # the services publish on commit: run them off the event loop
        request, _created = services.chat_request_create(
            user=alice.user, other_user_id=bob.id, distinct=False
        )
        services.chat_request_accept(user=bob.user, request_id=request.public_id)
        return request.conversation.public_id

    alice, bob = make_user("Alice"), make_user("Bob")
    chat_id = await sync_to_async(own_chat)()
    a, b = await connect(live_server_proc, alice), await connect(live_server_proc, bob)
    left = await b.call("leave-chat", {"ChatId": chat_id})
    assert left["ok"] and left["data"] == {"ChatId": chat_id, "Left": True}
    told = await a.next("chat-member-left")
    assert (told["ChatId"], told["UserId"], told["Name"]) == (chat_id, bob.id, "Bob")
    assert (await a.call("send-personal-message", {"ChatId": chat_id, "Content": "while away"}))["ok"]
    refused = await b.call("send-personal-message", {"ChatId": chat_id, "Content": "still here"})
    assert refused["ok"] is False and refused["error"]["code"] == "not_found"
    back = await b.call("rejoin-chat", {"ChatId": chat_id})
    assert back["ok"] and back["data"] == {"ChatId": chat_id, "Left": False}
    assert (await a.next("chat-member-rejoined"))["UserId"] == bob.id
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "welcome back"})
    # The first message Bob's socket got is the one after rejoining.
    assert (await b.next("receive-personal-message"))["Content"] == "welcome back"
    assert b.names().count("receive-personal-message") == 1
    stranger = await connect(live_server_proc, make_user("Carol"))
    assert (await stranger.call("rejoin-chat", {"ChatId": chat_id}))["error"]["code"] == "not_found"
    for client in (a, b, stranger):
        await client.close()
