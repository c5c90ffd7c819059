"""The private chat protocol's pure half: render and wire shapes, each payload JSON-safe."""

import json
from datetime import UTC, datetime

import pytest

from gateway.audience import ACTOR, ALL, SUBJECT
from gateway.protocols.privatechat import wire
from gateway.protocols.privatechat.render import PREPARED, render
from gateway.protocols.privatechat.selectors import Line, Party, Room

T0 = datetime(2021, 3, 30, 9, 11, tzinfo=UTC)
ALICE, BOB = Party("a" * 24, "alice"), Party("b" * 24, "bob")


def survives(value):
    assert json.loads(json.dumps(value)) == value
    return value


def test_background_color_is_stable_and_in_range():
    color = wire.background_color(ALICE.id)
    assert color == wire.background_color(ALICE.id) != wire.background_color(BOB.id)
    assert all(157 <= int(c) <= 199 for c in color.split(", "))


def test_room_without_messages_has_a_placeholder_last_message():
    room = Room("c" * 24, [ALICE, BOB], None, [], T0, T0)
    listed = survives(wire.room(room, created=False))
    assert listed["lastMessage"] == {"createdAt": "2021-03-30T09:11:00.000Z"}
    assert "createdAt" not in listed and listed["roomType"] == "PRIVATE"
    assert survives(wire.room(room))["createdAt"] == "2021-03-30T09:11:00.000Z"


def test_room_with_a_message_and_unread_entries():
    line = Line("d" * 24, ALICE, BOB.id, "c" * 24, "hi", False, T0, T0)
    room = survives(wire.room(Room("c" * 24, [ALICE, BOB], line, [("d" * 24, BOB)], T0, T0)))
    assert room["lastMessage"] == {
        "_id": "d" * 24,
        "message": "hi",
        "read": False,
        "sender": {"_id": ALICE.id, "username": "alice"},
        "createdAt": "2021-03-30T09:11:00.000Z",
    }
    assert room["unreadMessages"] == [{"_id": "d" * 24, "recipient": {"_id": BOB.id, "username": "bob"}}]
    message = survives(wire.message(line))
    assert message["sender"]["username"] == "alice" and message["recipient"] == BOB.id


def test_message_and_read_render_to_everyone_in_the_room():
    prepared = {"message": {"_id": "m"}, "room": {"_id": "r"}, "messages": [{"_id": "m"}]}
    event = {"type": "message.created", "conversation": {"id": "r", "kind": "direct"}, PREPARED: prepared}
    (emit,) = render(event)
    assert (emit.name, emit.to, emit.skip, emit.skip_origin) == ("send message", ALL, (), False)
    assert survives(emit.payload) == {"message": {"_id": "m"}, "updatedRoom": {"_id": "r"}}
    (read,) = render({**event, "type": "conversation.read"})
    assert read.name == "read messages" and read.payload["updatedMessages"] == [{"_id": "m"}]


def test_group_and_unprepared_events_render_nothing():
    group = {"type": "message.created", "conversation": {"id": "g", "kind": "group"}, PREPARED: {"x": 1}}
    assert render(group) == []
    assert render({"type": "message.created", "conversation": {"id": "r", "kind": "direct"}}) == []
    assert render({"type": "typing.started", "conversation": {"id": "g", "kind": "group"}}) == []
    assert render({"type": "session.revoked", "user_id": "u"}) == []


def test_typing_is_a_bare_boolean_to_the_others():
    for kind, value in (("typing.started", True), ("typing.stopped", False)):
        (emit,) = render({"type": kind, "actor": ALICE.id, "conversation": {"id": "r", "kind": "direct"}})
        assert (emit.name, emit.payload, emit.skip) == ("notify typing", value, (ACTOR,))


def test_presence_uses_the_public_id():
    event = {"type": "presence.changed", "actor": ALICE.id, "user_id": ALICE.id, "state": "background"}
    (emit,) = render(event)
    assert survives(emit.payload) == {"isOnline": False, "recipientId": ALICE.id}
    assert emit.skip == (ACTOR,)
    (online,) = render({**event, "state": "foreground"})
    assert online.payload["isOnline"] is True


def test_friend_added_tells_each_side_the_other():
    event = {
        "type": "friend.added",
        "actor": ALICE.id,
        "subject": BOB.id,
        "user": {"id": ALICE.id, "name": "alice"},
        "friend": {"id": BOB.id, "name": "bob"},
    }
    to_actor, to_subject = render(event)
    assert (to_actor.to, to_actor.payload["_id"], to_actor.payload["username"]) == (ACTOR, BOB.id, "bob")
    assert (to_subject.to, to_subject.payload["_id"]) == (SUBJECT, ALICE.id)
    survives(to_actor.payload)


@pytest.mark.django_db  # the database thread's adapter checks its connection
async def test_prepare_reads_once_per_event_and_again_after_another_read(monkeypatch):
    from gateway.protocols.privatechat import PrivateChat, selectors

    reads: list[str] = []
    room = Room("c" * 24, [ALICE, BOB], None, [], T0, T0)

    def room_by_id(*, conversation_id):
        reads.append("room")
        return room

    def room_lines(*, conversation_id):
        reads.append("lines")
        return []

    monkeypatch.setattr(selectors, "room_by_id", room_by_id)
    monkeypatch.setattr(selectors, "room_lines", room_lines)
    protocol = PrivateChat()
    conversation = {"id": room.id, "kind": "direct"}
    created = {
        "type": "message.created",
        "actor": ALICE.id,
        "conversation": conversation,
        "message": {
            "id": "m" * 24,
            "sender_id": ALICE.id,
            "sender_name": "alice",
            "content": "hi",
            "created_at": "x",
        },
    }
    first = await protocol.prepare(dict(created))  # each participant's copy of the event
    second = await protocol.prepare(dict(created))
    assert first[PREPARED] == second[PREPARED] and reads == ["room"]
    assert survives(first[PREPARED])["message"]["recipient"] == BOB.id
    read = {"type": "conversation.read", "actor": ALICE.id, "conversation": conversation, "seq": 7}
    await protocol.prepare(dict(read))
    await protocol.prepare(dict(read))
    assert reads == ["room", "room", "lines"]
    await protocol.prepare({**read, "actor": BOB.id})  # another reader: the state changed
    await protocol.prepare(dict(read))  # so alice's repeat is read again
    assert reads == ["room", "room", "lines", "room", "lines", "room", "lines"]
    group = {**read, "conversation": {"id": "g", "kind": "group"}}
    assert await protocol.prepare(group) is group


@pytest.mark.django_db
async def test_events_of_a_room_without_the_partner_render_nothing(monkeypatch):
    from gateway.protocols.privatechat import PrivateChat, selectors

    lonely = Room("c" * 24, [ALICE], None, [], T0, T0)
    monkeypatch.setattr(selectors, "room_by_id", lambda *, conversation_id: lonely)
    event = {
        "type": "message.created",
        "actor": ALICE.id,
        "conversation": {"id": lonely.id, "kind": "direct"},
        "message": {"id": "m" * 24, "sender_id": ALICE.id, "content": "hi", "created_at": "x"},
    }
    prepared = await PrivateChat().prepare(event)
    assert PREPARED not in prepared and render(prepared) == []
