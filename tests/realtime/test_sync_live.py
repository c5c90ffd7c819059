"""Resync with stock python-socketio clients against live server processes: a client that was
away (even mid-send) sends its positions to `sync` and ends with exactly what history serves,
nothing missing, nothing twice, in revision order; across two processes sharing Redis."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from groups import services as group_services
from messaging import services as msg_services
from messaging.models import Message

from .clients import SioClient, WsClient, connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)


def message_id(payload: dict) -> str:
    return payload.get("Id") or payload["_id"]


class Client:
    """What a client author keeps: per chat the highest Rev seen and each message's Rev."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.revs: dict[str, dict[str, int]] = {}

    def seen(self, chat_id: str, rev: int, mid: str | None = None) -> None:
        self.positions[chat_id] = max(self.positions.get(chat_id, 0), rev)
        if mid is not None:
            chat = self.revs.setdefault(chat_id, {})
            chat[mid] = max(chat.get(mid, 0), rev)

    def apply_sync(self, data: dict) -> None:
        for chat_id, entry in data["Chats"].items():
            assert not entry["Reload"] and not entry["Gone"] and not entry["More"], entry
            got = [m["Rev"] for m in entry["Messages"]]
            assert got == sorted(set(got)), "rev order, no duplicates"
            assert all(r > self.positions.get(chat_id, 0) for r in got)
            ids = [message_id(m) for m in entry["Messages"]]
            assert len(ids) == len(set(ids))
            for message in entry["Messages"]:
                self.seen(chat_id, message["Rev"], message_id(message))
            self.positions[chat_id] = entry["Rev"]


async def history(client: SioClient, chat_id: str, kind: str) -> list[dict]:
    if kind == "group":
        await client.emit("fetch-group-chat", {"GroupId": chat_id, "Limit": 200})
        return (await client.next("group-chat"))["Messages"]
    await client.emit("fetch-personal-chat", {"ChatId": chat_id, "Limit": 200})
    return (await client.next("personal-chat"))["Messages"]


async def stored(client_message_id: str, timeout: float = 5.0) -> Message:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await sync_to_async(
            lambda: Message.objects.filter(client_message_id=client_message_id).first()
        )()
        if found is not None:
            return found
        assert asyncio.get_running_loop().time() < deadline, "the send never reached the database"
        await asyncio.sleep(0.05)


async def test_client_away_on_one_process_catches_up_exactly_on_the_other(redis_server_pair, make_user):
    one, two = redis_server_pair
    alice, bob, carol, dave = (make_user(n) for n in ("Alice", "Bob", "Carol", "Dave"))
    team = await sync_to_async(group_services.group_create)(
        user=bob.user, name="Team", member_ids=[alice.id, carol.id], description=""
    )
    a = await connect_greeted(one, alice, extensions=True)  # follows Rev: sees system messages
    b, c = await connect_greeted(two, bob), await connect_greeted(two, carol)
    direct = ok(await b.call("create-personal-chat", {"Receiver": alice.id}))["ChatId"]
    await a.next("create-personal-chat-partner")
    kinds = {team.public_id: "group", direct: "personal"}
    model = Client()
    for chat_id, kind in kinds.items():  # A opens both chats: its starting state
        for message in await history(a, chat_id, kind):
            model.seen(chat_id, message["Rev"], message_id(message))

    # Live, before the disconnect: A's client follows the Revs it is sent.
    sent = ok(await b.call("send-group-message", {"GroupId": team.public_id, "Content": "g1"}))
    live = await a.next("receive-group-message")
    assert live["Rev"] == sent["Rev"] and live["Id"] == sent["Id"]
    model.seen(team.public_id, live["Rev"], live["Id"])
    mine = ok(await a.call("send-personal-message", {"ChatId": direct, "Content": "p1"}))
    model.seen(direct, mine["Rev"], mine["Id"])

    # A sends and is gone without an answer: an emit asks for no ack, and the connection closes
    # as soon as the server has stored it (closing earlier could drop the event unhandled, and
    # the test would not know which case it ran).
    await a.emit(
        "send-group-message", {"GroupId": team.public_id, "Content": "mid", "ClientMessageId": "mid-1"}
    )
    mid = await stored("mid-1")
    await a.close()

    # Meanwhile, on process two: messages, an edit, deletes, reactions, a member change.
    g2 = ok(await b.call("send-group-message", {"GroupId": team.public_id, "Content": "g2"}))
    g3 = ok(await c.call("send-group-message", {"GroupId": team.public_id, "Content": "g3"}))
    ok(await b.call("edit-message", {"ChatId": team.public_id, "Id": sent["Id"], "Content": "g1!"}))
    ok(await c.call("react", {"ChatId": team.public_id, "Id": mid.public_id, "Emoji": "👍"}))
    ok(await b.call("react", {"ChatId": team.public_id, "Id": g2["Id"], "Emoji": "🎉"}))
    ok(await b.call("unreact", {"ChatId": team.public_id, "Id": g2["Id"], "Emoji": "🎉"}))
    ok(await b.call("delete-message", {"ChatId": team.public_id, "Id": g3["Id"]}))
    await sync_to_async(group_services.group_member_add)(
        user=bob.user, group_id=team.public_id, member_id=dave.id
    )
    p2 = ok(await b.call("send-personal-message", {"ChatId": direct, "Content": "p2"}))
    ok(await b.call("react", {"ChatId": direct, "Id": mine["Id"], "Emoji": "❤️"}))
    ok(await b.call("delete-message", {"ChatId": direct, "Id": p2["Id"]}))

    # A comes back on the other process and syncs from its positions.
    a = await connect_greeted(two, alice, extensions=True)
    positions = dict(model.positions)
    data = ok(await a.call("sync", {"Positions": positions}))
    assert await a.next("synced") == data
    group_ids = [message_id(m) for m in data["Chats"][team.public_id]["Messages"]]
    assert group_ids.count(mid.public_id) == 1
    assert set(group_ids) == {sent["Id"], mid.public_id, g2["Id"], g3["Id"]} | set(group_ids[-1:])
    assert data["Chats"][team.public_id]["Messages"][-1]["Kind"] == "system"  # Dave was added
    assert [message_id(m) for m in data["Chats"][direct]["Messages"]] == [mine["Id"], p2["Id"]]
    model.apply_sync(data)

    # Nothing missing: the client's view equals history, message by message and Rev by Rev.
    for chat_id, kind in kinds.items():
        served = await history(a, chat_id, kind)
        assert model.revs[chat_id] == {message_id(m): m["Rev"] for m in served}
        by_id = {message_id(m): m for m in served}
        for message in data["Chats"][chat_id]["Messages"]:
            assert message == by_id[message_id(message)]  # current state, history's shape

    # The retried send is the same message; a second sync has nothing more.
    retry = ok(
        await a.call(
            "send-group-message", {"GroupId": team.public_id, "Content": "mid", "ClientMessageId": "mid-1"}
        )
    )
    assert (retry["Duplicate"], retry["Id"]) == (True, mid.public_id)
    again = ok(await a.call("sync", {"Positions": model.positions}))
    assert all(entry["Messages"] == [] for entry in again["Chats"].values())
    assert await sync_to_async(Message.objects.filter(client_message_id="mid-1").count)() == 1
    for client in (a, b, c):
        await client.close()


async def test_sync_on_one_process_after_zero_events_and_over_ws(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    chat = await sync_to_async(msg_services.direct_conversation_get_or_create)(
        user=bob.user, other_user_id=alice.id
    )
    chat_id = chat[0].public_id
    for text in ("one", "two"):
        await sync_to_async(msg_services.message_send)(user=bob.user, conversation_id=chat_id, content=text)

    # A client that never received anything asks for everything.
    a = await connect_greeted(live_server_proc, alice)
    data = ok(await a.call("sync", {"All": True}))
    entry = data["Chats"][chat_id]
    assert [m["Content"] for m in entry["Messages"]] == ["one", "two"]
    assert (entry["Kind"], entry["Rev"], entry["Gone"]) == ("direct", 2, False)
    assert {c["Kind"] for c in data["Chats"].values()} == {"direct", "self"}

    # Live changes carry the next Revs; a hole shows as Rev > last + 1.
    b = await connect_greeted(live_server_proc, bob)
    sent = ok(await b.call("send-personal-message", {"ChatId": chat_id, "Content": "three"}))
    assert (await a.next("receive-personal-message"))["Rev"] == sent["Rev"] == 3
    edited = ok(await b.call("edit-message", {"ChatId": chat_id, "Id": sent["Id"], "Content": "3"}))
    assert (await a.next("message-edited"))["Rev"] == edited["Rev"] == 4
    reacted = ok(await b.call("react", {"ChatId": chat_id, "Id": sent["Id"], "Emoji": "👍"}))
    assert (await a.next("reaction"))["Rev"] == reacted["Rev"] == 5
    deleted = ok(await b.call("delete-message", {"ChatId": chat_id, "Id": sent["Id"]}))
    assert (await a.next("message-deleted"))["Rev"] == deleted["Rev"] == 6

    # The same over /ws/, from a mid-stream position.
    ws = await WsClient().connect(live_server_proc.url, headers={"Authorization": f"Bearer {alice.access}"})
    await ws.next("group-chat-list")
    # The greeting's list tells each chat's latest Rev: a client can tell what changed unopened.
    listing = await ws.next("personal-chat-list")
    assert [(c["_id"], c["Seq"], c["Rev"]) for c in listing["PersonalChatList"]] == [(chat_id, 3, 6)]
    answer = await ws.call("sync", {"Positions": {chat_id: 2}})
    (message,) = answer["data"]["Chats"][chat_id]["Messages"]
    assert (message["_id"], message["Rev"], message["Deleted"], message["Content"]) == (
        sent["Id"],
        6,
        True,
        "",
    )

    # Strict validation, answered like every refusal.
    for bad in ({"Positions": []}, {"Positions": {chat_id: -1}}, {"Positions": {chat_id: "1"}}, {"All": 1}):
        refused = await a.call("sync", bad)
        assert refused["ok"] is False and refused["error"]["code"] == "invalid", bad
    for client in (a, b, ws):
        await client.close()
