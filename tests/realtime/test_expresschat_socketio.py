"""The ExpressChat protocol on namespace "/", with real python-socketio clients against a live
server process."""

import asyncio
import re
from datetime import timedelta

import pytest
import socketio
from rest_framework_simplejwt.tokens import AccessToken

from messaging.models import Conversation, Message

from .clients import SioClient

pytestmark = pytest.mark.django_db(transaction=True)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def connect(server, chat_user, **kwargs) -> SioClient:
    client = await SioClient().connect(server.url, token=chat_user.access, **kwargs)
    await client.next("group-chat-list")
    return client


def short_access(chat_user, seconds: int) -> str:
    token = AccessToken.for_user(chat_user.user)
    token["sid"] = chat_user.sid
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


async def open_chat(a: SioClient, b_user) -> str:
    ack = await a.call("create-personal-chat", {"Receiver": b_user.id})
    assert ack["ok"], ack
    return ack["data"]["ChatId"]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_connect_sends_user_id_then_both_lists(live_server_proc, make_user, transport):
    alice = make_user("Alice")
    client = await SioClient().connect(live_server_proc.url, token=alice.access, transports=[transport])
    user_id = await client.next("user-id")
    personal = await client.next("personal-chat-list")
    groups = await client.next("group-chat-list")
    assert user_id == {"userId": alice.id, "userName": "Alice"}
    assert personal == {"PersonalChatList": []}
    assert groups == {"GroupChatList": []}
    assert client.names() == ["connect", "user-id", "personal-chat-list", "group-chat-list"]
    await client.close()


async def test_bad_token_gets_connect_then_auth_failure_then_server_disconnect(live_server_proc, make_user):
    client = await SioClient().connect(live_server_proc.url, token="not-a-jwt")
    failure = await client.next("auth-failure")
    reason = await client.next("disconnect")
    assert failure["reason"] == "Authentication failed"
    assert client.names() == ["connect", "auth-failure", "disconnect"]
    assert reason == socketio.AsyncClient.reason.SERVER_DISCONNECT  # "io server disconnect" in JS


async def test_missing_credentials_are_refused(live_server_proc):
    client = await SioClient().connect(live_server_proc.url)
    assert (await client.next("auth-failure"))["reason"] == "Authentication failed"
    await client.next("disconnect")


async def test_banned_user_cannot_connect(live_server_proc, make_user):
    mallory = make_user("Mallory")
    mallory.user.is_banned = True
    mallory.user.save(update_fields=["is_banned"])
    client = await SioClient().connect(live_server_proc.url, token=mallory.access)
    assert (await client.next("auth-failure"))["code"] == "banned"
    await client.next("disconnect")


async def test_cookie_login_with_expired_access_pushes_a_new_access_token(live_server_proc, make_user):
    alice = make_user("Alice")
    expired = short_access(alice, -5)
    cookies = f"access_token={expired}; refresh_token={alice.refresh}"
    client = await SioClient().connect(live_server_proc.url, headers={"Cookie": cookies})
    fresh = await client.next("access-token")
    assert fresh["accessToken"] != expired
    assert (await client.next("user-id"))["userId"] == alice.id
    assert client.names()[:3] == ["connect", "access-token", "user-id"]
    await client.close()


async def test_query_tokens_of_different_sessions_are_refused(live_server_proc, make_user):
    alice = make_user("Alice")
    bob = make_user("Bob")
    query = f"accessToken={short_access(alice, -5)}&refreshToken={bob.refresh}"
    client = await SioClient().connect(live_server_proc.url, query=query)
    assert (await client.next("auth-failure"))["reason"] == "Authentication failed"


async def test_native_socket_is_closed_when_its_access_token_expires(live_server_proc, make_user):
    alice = make_user("Alice")
    client = await SioClient().connect(live_server_proc.url, token=short_access(alice, 2))
    await client.next("group-chat-list")
    failure = await client.next("auth-failure", timeout=6)
    assert failure["code"] == "token_expired"
    await client.next("disconnect")


async def test_in_band_auth_extends_a_native_socket(live_server_proc, make_user):
    alice = make_user("Alice")
    client = await SioClient().connect(live_server_proc.url, token=short_access(alice, 2))
    await client.next("group-chat-list")
    ack = await client.call("auth", {"token": short_access(alice, 600)})
    assert ack["ok"] is True
    await client.none("auth-failure", wait=3)
    assert client.sio.connected
    await client.close()


async def test_in_band_auth_with_another_users_token_is_refused(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    client = await connect(live_server_proc, alice)
    ack = await client.call("auth", {"token": bob.access})
    assert ack == {
        "ok": False,
        "error": {"code": "permission_denied", "message": ack["error"]["message"], "extra": {}},
    }
    await client.close()


async def test_personal_chat_both_ways_with_read_acknowledgement(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await connect(live_server_proc, alice), await connect(live_server_proc, bob)

    ack = await a.call(
        "create-personal-chat", {"Receiver": bob.id, "Partner": "spoofed", "UserName": "spoofed"}
    )
    chat_id = ack["data"]["ChatId"]
    assert await a.next("create-personal-chat-creator") == {"ChatId": chat_id, "Partner": "Bob"}
    assert await b.next("create-personal-chat-partner") == {"ChatId": chat_id, "Partner": "Alice"}

    sent = await a.call("send-personal-message", {"ChatId": chat_id, "Content": "hi Bob"})
    assert sent["ok"] and sent["data"]["Seq"] == 1
    received = await b.next("receive-personal-message")
    assert {k: received[k] for k in ("ChatId", "Content", "Sender")} == {
        "ChatId": chat_id,
        "Content": "hi Bob",
        "Sender": "Alice",
    }
    assert received["Seq"] == 1 and received["Id"] == sent["data"]["Id"]
    assert TIMESTAMP.match(received["Timestamp"])

    await b.call("send-personal-message", {"ChatId": chat_id, "Content": "hi Alice"})
    assert (await a.next("receive-personal-message"))["Sender"] == "Bob"
    await a.none("receive-personal-message", wait=0.2)  # the sender gets no copy of its own message

    await b.call("read-personal-message", {"ChatId": chat_id})
    assert (await a.next("read-personal-msg-ack"))["ChatId"] == chat_id
    await a.close()
    await b.close()


async def test_fetch_personal_chat_is_newest_first_with_read_status(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await connect(live_server_proc, alice)
    chat_id = await open_chat(a, bob)
    for text in ("one", "two", "three"):
        await a.call("send-personal-message", {"ChatId": chat_id, "Content": text})
    await a.call("fetch-personal-chat", {"ChatId": chat_id, "Partner": "ignored"})
    page = await a.next("personal-chat")
    assert [m["Content"] for m in page["Messages"]] == ["three", "two", "one"]
    assert page["UserId"] == alice.id and page["User"] == "Alice" and page["Partner"] == "Bob"
    first = page["Messages"][0]
    assert first["Sender"] == alice.id
    assert first["ReadStatus"] == {alice.id: "Read", bob.id: "Unread"}
    assert TIMESTAMP.match(first["Timestamp"]) and len(first["_id"]) == 24

    await a.call("fetch-personal-chat", {"ChatId": chat_id, "Before": 3, "Limit": 1})
    assert [m["Content"] for m in (await a.next("personal-chat"))["Messages"]] == ["two"]
    await a.close()


async def test_personal_chat_list_has_partner_and_unread_count(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await connect(live_server_proc, alice)
    chat_id = await open_chat(a, bob)
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "1"})
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "2"})
    b = await SioClient().connect(live_server_proc.url, token=bob.access)
    listing = await b.next("personal-chat-list")
    (entry,) = listing["PersonalChatList"]
    assert entry["_id"] == chat_id and entry["Partner"] == "Alice" and entry["Unread"] == 2
    assert TIMESTAMP.match(entry["LastChat"])
    await a.close()
    await b.close()


async def test_second_create_personal_chat_returns_the_existing_chat(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await connect(live_server_proc, alice), await connect(live_server_proc, bob)
    chat_id = await open_chat(a, bob)
    again = await b.call("create-personal-chat", {"Receiver": alice.id})
    assert again["data"] == {"Exists": 1, "ChatId": chat_id, "Partner": "Alice"}
    assert await b.next("create-chat-result") == {"Exists": 1, "ChatId": chat_id, "Partner": "Alice"}
    assert Conversation.objects.filter(kind="direct").count() == 1
    checked = await a.call("check-chat", {"Receiver": bob.id})
    assert checked["data"] == {"Exists": 1, "ChatId": chat_id, "Partner": "Bob"}
    await a.close()
    await b.close()


async def test_self_chat_send_and_fetch(live_server_proc, make_user):
    alice = make_user("Alice")
    a = await connect(live_server_proc, alice)
    sent = await a.call("send-self-message", {"Content": "buy milk"})
    assert sent["ok"]
    await a.call("fetch-self-chat", {})
    page = await a.next("self-chat")
    assert page["Name"] == "Alice"
    assert [m["Content"] for m in page["Messages"]] == ["buy milk"]
    assert set(page["Messages"][0]) >= {"Content", "Timestamp", "_id"}
    await a.close()


async def test_retry_with_the_same_client_message_id_returns_the_original(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await connect(live_server_proc, alice), await connect(live_server_proc, bob)
    chat_id = await open_chat(a, bob)
    payload = {"ChatId": chat_id, "Content": "once", "ClientMessageId": "c-1"}
    first = await a.call("send-personal-message", payload)
    second = await a.call("send-personal-message", payload)
    assert first["data"]["Id"] == second["data"]["Id"] and second["data"]["Duplicate"] is True
    await b.next("receive-personal-message")
    await b.none("receive-personal-message", wait=0.3)
    assert Message.objects.filter(content="once").count() == 1
    await a.close()
    await b.close()


async def test_outsider_cannot_read_post_or_mark_read(live_server_proc, make_user):
    alice, bob, eve = make_user("Alice"), make_user("Bob"), make_user("Eve")
    a, e = await connect(live_server_proc, alice), await connect(live_server_proc, eve)
    chat_id = await open_chat(a, bob)
    for event, data in [
        ("send-personal-message", {"ChatId": chat_id, "Content": "intrusion"}),
        ("fetch-personal-chat", {"ChatId": chat_id}),
        ("read-personal-message", {"ChatId": chat_id}),
    ]:
        ack = await e.call(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", (event, ack)
    await e.none("personal-chat", wait=0.1)
    assert Message.objects.filter(conversation__public_id=chat_id).count() == 0
    await a.close()
    await e.close()


@pytest.mark.parametrize(
    ("event", "data", "code"),
    [
        ("send-personal-message", {"ChatId": {"$ne": 0}, "Content": "x"}, "invalid"),
        ("send-personal-message", {"ChatId": "0" * 24, "Content": "x"}, "not_found"),
        ("send-personal-message", None, "invalid"),
        ("send-personal-message", "text", "invalid"),
        ("send-self-message", {"Content": ""}, "invalid"),
        ("send-self-message", {"Content": "   "}, "invalid"),
        ("send-self-message", {"Content": 42}, "invalid"),
        ("send-self-message", {"Content": "x" * 4001}, "invalid"),
        ("send-self-message", {"Content": "x", "ClientMessageId": {"a": 1}}, "invalid"),
        ("search-user", {"Name": "(", "Type": "Other"}, "invalid"),
        ("search-user", {"Name": ["a"], "Type": "Search"}, "invalid"),
        ("check-chat", {"Receiver": "nobody"}, "not_found"),
        ("create-personal-chat", {}, "invalid"),
        ("fetch-personal-chat", {"ChatId": "0" * 24, "Limit": -1}, "invalid"),
        ("no-such-event", {}, "invalid"),
    ],
)
async def test_bad_payloads_get_an_error_and_keep_the_connection(
    live_server_proc, make_user, event, data, code
):
    alice = make_user("Alice")
    a = await connect(live_server_proc, alice)
    ack = await a.call(event, data)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    error_event = await a.next("error")
    assert error_event["code"] == code and error_event["event"] == event
    assert (await a.call("fetch-user-details"))["ok"] is True  # still connected and serving
    assert Message.objects.count() == 0
    await a.close()


async def test_creating_a_chat_with_oneself_is_refused(live_server_proc, make_user):
    alice = make_user("Alice")
    a = await connect(live_server_proc, alice)
    ack = await a.call("create-personal-chat", {"Receiver": alice.id})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    await a.close()


async def test_flooding_client_is_rate_limited_and_told(live_server_proc, make_user):
    alice = make_user("Alice")
    a = await connect(live_server_proc, alice)
    acks = [await a.call("fetch-user-details") for _ in range(80)]
    limited = [ack for ack in acks if not ack["ok"]]
    assert limited and all(ack["error"]["code"] == "rate_limited" for ack in limited)
    assert acks[0]["ok"] is True
    await a.close()


async def test_every_connection_of_a_user_receives_its_events(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await connect(live_server_proc, alice)
    b1, b2 = (
        await connect(live_server_proc, bob),
        await connect(live_server_proc, bob, transports=["polling"]),
    )
    chat_id = await open_chat(a, bob)
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "to both tabs"})
    assert (await b1.next("receive-personal-message"))["Content"] == "to both tabs"
    assert (await b2.next("receive-personal-message"))["Content"] == "to both tabs"
    for client in (a, b1, b2):
        await client.close()


async def test_user_details_and_search(live_server_proc, make_user):
    alice, _bob = make_user("Alice", email="alice@example.com"), make_user("Bobby", email="bob@example.com")
    a = await connect(live_server_proc, alice)
    await a.call("fetch-user-details")
    assert await a.next("user-details") == {"Name": "Alice", "Email": "alice@example.com", "Id": alice.id}
    await a.call("search-user", {"Name": "bob", "Type": "Search"})
    found = (await a.next("searched-user"))["Users"]
    assert [u["Name"] for u in found] == ["Bobby"]
    assert found[0]["Email"] == ""  # other users' emails stay private by default
    await a.call("search-user", {"Name": ".*", "Type": "Add"})  # plain text, not a pattern
    assert (await a.next("added-user-match"))["Users"] == []
    await a.close()


async def test_messages_arrive_in_the_order_sent(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await connect(live_server_proc, alice), await connect(live_server_proc, bob)
    chat_id = await open_chat(a, bob)
    for i in range(30):
        await a.emit("send-personal-message", {"ChatId": chat_id, "Content": f"m{i}"})
    got = [await b.next("receive-personal-message") for _ in range(30)]
    assert [m["Content"] for m in got] == [f"m{i}" for i in range(30)]
    assert [m["Seq"] for m in got] == list(range(1, 31))
    await a.close()
    await b.close()


async def test_disconnecting_mid_greeting_leaves_no_trace(live_server_proc, make_user):
    alice = make_user("Alice")
    clients = [SioClient() for _ in range(5)]
    await asyncio.gather(*(c.connect(live_server_proc.url, token=alice.access) for c in clients))
    await asyncio.gather(*(c.close() for c in clients))
    again = await connect(live_server_proc, alice)
    assert (await again.call("fetch-user-details"))["ok"]
    await again.close()
