"""Receipts, unread counts, typing and presence against one live server process
(`live_server_proc`: the in-process presence store when REDIS_URL is unset), with real
python-socketio clients and a /ws/ client. The server runs the default timers."""

import asyncio

import pytest
from django.conf import settings

from accounts.models import User

from .conftest import device, rest, ws_device

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_clients")]

# The server's default debounce is 1.5 s: a transition arrives within a few seconds.
ARRIVES = 6.0
QUIET = settings.CHAT["PRESENCE_DEBOUNCE_SECONDS"] + 1.0


async def open_chat(client, other) -> str:
    ack = await client.call("create-personal-chat", {"Receiver": other.id})
    assert ack["ok"], ack
    return ack["data"]["ChatId"]


async def next_presence_of(client, user_id: str, timeout: float = ARRIVES) -> dict:
    """The next `presence` event about `user_id` (events about others are skipped)."""
    while True:
        event = await client.next("presence", timeout=timeout)
        if event["UserId"] == user_id:
            return event


# --- typing ----------------------------------------------------------------------------------------


async def test_typing_reaches_the_other_member_only_and_carries_expires_in(live_server_proc, make_user):
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    a1, a2 = await device(live_server_proc, alice), await device(live_server_proc, alice)
    b, c = await device(live_server_proc, bob), await device(live_server_proc, carol)
    chat_id = await open_chat(a1, bob)
    ack = await a1.call("typing", {"ChatId": chat_id})
    assert ack == {"ok": True, "data": {"ChatId": chat_id, "Relayed": True}}
    assert await b.next("typing") == {
        "ChatId": chat_id,
        "UserId": alice.id,
        "UserName": "Alice",
        "ExpiresIn": settings.CHAT["TYPING_TTL_SECONDS"],
    }
    assert (await a1.call("stop-typing", {"ChatId": chat_id}))["data"]["Relayed"] is True
    assert await b.next("stop-typing") == {"ChatId": chat_id, "UserId": alice.id}
    # A second stop has nothing to stop.
    assert (await a1.call("stop-typing", {"ChatId": chat_id}))["data"]["Relayed"] is False
    await b.none("stop-typing", wait=0.3)
    for other in (a1, a2, c):  # not the typist's devices, not outsiders
        await other.none("typing", wait=0)
        await other.none("stop-typing", wait=0)


async def test_typing_is_relayed_at_most_once_per_interval_per_conversation(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await device(live_server_proc, alice), await device(live_server_proc, bob)
    chat_id = await open_chat(a, bob)
    relayed = [(await a.call("typing", {"ChatId": chat_id}))["data"]["Relayed"] for _ in range(5)]
    assert relayed == [True, False, False, False, False]
    await b.next("typing")
    await b.none("typing", wait=0.3)
    await asyncio.sleep(settings.CHAT["TYPING_MIN_INTERVAL_SECONDS"])
    assert (await a.call("typing", {"ChatId": chat_id}))["data"]["Relayed"] is True
    await b.next("typing")


async def test_typing_needs_a_chat_the_typist_is_in_with_somebody(live_server_proc, make_user):
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    a, b, c = [await device(live_server_proc, u) for u in (alice, bob, carol)]
    chat_id = await open_chat(a, bob)
    ack = await c.call("typing", {"ChatId": chat_id})
    assert ack["error"]["code"] == "not_found"
    assert (await c.next("error"))["event"] == "typing"
    assert (await a.call("fetch-self-chat"))["ok"]
    self_id = (await a.next("self-chat"))["ChatId"]
    assert (await a.call("typing", {"ChatId": self_id}))["error"]["code"] == "invalid"
    assert (await a.call("typing", {}))["error"]["code"] == "invalid"
    await b.none("typing", wait=0.3)


# --- receipts and unread counts --------------------------------------------------------------------


async def test_reading_on_one_device_clears_the_count_on_the_others_live(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a1, a2 = await device(live_server_proc, alice), await device(live_server_proc, alice)
    b = await device(live_server_proc, bob)
    chat_id = await open_chat(b, alice)
    ids = [
        (await b.call("send-personal-message", {"ChatId": chat_id, "Content": f"m{i}"}))["data"]["Id"]
        for i in range(3)
    ]
    ack = await a1.call("mark-read", {"ChatId": chat_id, "MessageIds": ids[:2]})
    assert ack == {"ok": True, "data": {"ChatId": chat_id, "Seq": 2, "Unread": 1}}
    for client in (a1, a2):
        assert await client.next("unread") == {"ChatId": chat_id, "Unread": 1, "Total": 1, "Seq": 2}
    assert (await b.next("read-personal-msg-ack"))["Seq"] == 2
    await a2.call("read-personal-message", {"ChatId": chat_id, "LastMessageId": ids[2]})
    for client in (a1, a2):
        assert await client.next("unread") == {"ChatId": chat_id, "Unread": 0, "Total": 0, "Seq": 3}
    await b.none("unread", wait=0.2)  # counts are the reader's own business
    for client in (a1, a2):
        await client.none("read-personal-msg-ack", wait=0)


async def test_receipts_turned_off_live_stop_both_ways_but_counts_still_clear(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await device(live_server_proc, alice), await device(live_server_proc, bob)
    chat_id = await open_chat(a, bob)
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "hi"})
    status, body = await rest(
        live_server_proc, bob, "PATCH", "/api/users/me/settings", {"read_receipts_enabled": False}
    )
    assert (status, body) == (200, {"presence_hidden": False, "read_receipts_enabled": False})
    await asyncio.sleep(0.3)  # the settings event reaches Bob's connection
    await b.call("mark-read", {"ChatId": chat_id})
    assert (await b.next("unread"))["Unread"] == 0
    await b.call("send-personal-message", {"ChatId": chat_id, "Content": "back"})
    await a.call("mark-read", {"ChatId": chat_id})
    await a.next("unread")
    await a.none("read-personal-msg-ack", wait=0.3)  # Bob's read is private
    await b.none("read-personal-msg-ack", wait=0)  # and Bob sees nobody's
    await b.call("fetch-personal-chat", {"ChatId": chat_id})
    page = await b.next("personal-chat")
    assert {key for m in page["Messages"] for key in m["ReadStatus"]} == {bob.id}


async def test_delivered_receipts_reach_the_sender(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await device(live_server_proc, alice), await device(live_server_proc, bob)
    chat_id = await open_chat(a, bob)
    await a.call("send-personal-message", {"ChatId": chat_id, "Content": "hi"})
    await b.next("receive-personal-message")
    assert (await b.call("message-delivered", {"ChatId": chat_id, "Seq": 1}))["data"] == {
        "ChatId": chat_id,
        "Seq": 1,
    }
    assert await a.next("message-delivered") == {"ChatId": chat_id, "UserId": bob.id, "Seq": 1}
    await b.none("message-delivered", wait=0.2)
    ack = await a.call("fetch-seen-by", {"ChatId": chat_id, "Seq": 1})
    seen = await a.next("seen-by")
    assert seen == ack["data"]
    assert (seen["SeenBy"], seen["DeliveredTo"]) == ([], [{"UserId": bob.id, "Name": "Bob"}])
    await b.call("mark-read", {"ChatId": chat_id})
    await a.next("read-personal-msg-ack")
    seen = (await a.call("fetch-seen-by", {"ChatId": chat_id, "Seq": 1}))["data"]
    assert (seen["SeenBy"], seen["SeenCount"], seen["DeliveredCount"]) == (
        [{"UserId": bob.id, "Name": "Bob"}],
        1,
        0,
    )


# --- presence ------------------------------------------------------------------------------------


async def test_presence_goes_online_background_offline_for_people_sharing_a_chat(live_server_proc, make_user):
    alice, bob, dave = make_user("Alice"), make_user("Bob"), make_user("Dave")
    b = await device(live_server_proc, bob)
    d = await device(live_server_proc, dave)  # shares nothing with Alice
    await open_chat(b, alice)
    a = await device(live_server_proc, alice)
    assert await next_presence_of(b, alice.id) == {
        "UserId": alice.id,
        "Online": True,
        "State": "foreground",
        "LastSeen": None,
    }
    assert (await a.call("presence-state", {"State": "background"}))["data"] == {"State": "background"}
    assert (await next_presence_of(b, alice.id))["State"] == "background"
    assert (await a.call("presence-state", {"State": "asleep"}))["error"]["code"] == "invalid"
    await a.close()
    offline = await next_presence_of(b, alice.id)
    assert (offline["Online"], offline["State"]) == (False, "offline")
    assert offline["LastSeen"] is not None
    fetched = (await b.call("fetch-presence", {"UserIds": [alice.id, dave.id, bob.id]}))["data"]["Users"]
    assert [(u["UserId"], u["State"]) for u in fetched] == [(alice.id, "offline"), (bob.id, "foreground")]
    assert fetched[0]["LastSeen"] == offline["LastSeen"]
    assert (await b.next("presence-list"))["Users"] == fetched
    assert [e for e in d.log if e[0] == "presence" and e[1]["UserId"] == alice.id] == []
    last_seen = await asyncio.to_thread(lambda: User.objects.get(pk=alice.user.pk).last_seen_at)
    assert last_seen is not None


async def test_a_quick_reconnect_publishes_nothing(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    b = await device(live_server_proc, bob)
    await open_chat(b, alice)
    a = await device(live_server_proc, alice)
    await next_presence_of(b, alice.id)
    await a.close()
    await device(live_server_proc, alice)  # back within the debounce window
    await asyncio.sleep(QUIET)
    assert [e for e in b.log if e[0] == "presence" and e[1]["UserId"] == alice.id][1:] == []


async def test_hidden_presence_is_never_published(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    b = await device(live_server_proc, bob)
    await open_chat(b, alice)
    a = await device(live_server_proc, alice)
    await next_presence_of(b, alice.id)
    status, _ = await rest(
        live_server_proc, alice, "PATCH", "/api/users/me/settings", {"presence_hidden": True}
    )
    assert status == 200
    hidden = await next_presence_of(b, alice.id)  # hiding looks like leaving
    assert (hidden["State"], hidden["LastSeen"]) == ("offline", None)
    await a.call("presence-state", {"State": "background"})
    await a.close()
    await device(live_server_proc, alice)
    await asyncio.sleep(QUIET)
    assert [e[1]["State"] for e in b.log if e[0] == "presence" and e[1]["UserId"] == alice.id] == [
        "foreground",
        "offline",
    ]
    status, body = await rest(live_server_proc, bob, "GET", f"/api/presence/?user_ids={alice.id}")
    assert (status, body["results"][0]["state"], body["results"][0]["last_seen"]) == (200, "offline", None)


async def test_the_ws_transport_speaks_the_same_events(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    b = await device(live_server_proc, bob)
    chat_id = await open_chat(b, alice)
    a = await ws_device(live_server_proc, alice)
    await next_presence_of(b, alice.id)
    assert (await a.call("typing", {"ChatId": chat_id}))["data"]["Relayed"] is True
    assert (await b.next("typing"))["UserId"] == alice.id
    await b.call("typing", {"ChatId": chat_id})
    assert (await a.next("typing"))["UserId"] == bob.id
    await a.call("presence-state", {"State": "background"})
    assert (await next_presence_of(b, alice.id))["State"] == "background"
    users = (await a.call("fetch-presence", {"UserIds": [bob.id]}))["data"]["Users"]
    assert users == [{"UserId": bob.id, "Online": True, "State": "foreground", "LastSeen": None}]
