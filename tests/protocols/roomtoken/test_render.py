"""The outbound half, pure: a prepared domain event -> room-token events, one per local view of
each party (a client sees itself by the id it connected with, nobody else ever does), scoped
to the room's namespace and the view; and the scopes a connection takes."""

import gc
import json
from dataclasses import dataclass

from gateway.audience import ACTOR
from gateway.protocols.roomtoken import selves
from gateway.protocols.roomtoken.protocol import PROTOCOL
from gateway.protocols.roomtoken.render import render, scope
from gateway.protocols.roomtoken.state import RoomTokenState

ROOM = {
    "room_key": "5" * 24,
    "conversation_id": "c" * 24,
    "namespace": "customer",
    "token": "tok-1",
    "room_id": "r-1",
    "customer_id": "1" * 24,
    "vendor_id": "2" * 24,
    "customer": "c1",
    "vendor": "a1",
}
VIEWS = {"1" * 24: [["tc", "HANDLE-C"]], "2" * 24: [["ta", "HANDLE-A"], ["tb", "a1"]]}
CONVERSATION = {"id": "c" * 24, "kind": "direct"}


def prepared(event: dict) -> dict:
    return event | {"rt_room": ROOM, "rt_views": VIEWS, "conversation": CONVERSATION}


def message_event(sender: str, **message) -> dict:
    return prepared(
        {
            "type": "message.created",
            "actor": sender,
            "message": {
                "id": "m" * 24,
                "kind": "text",
                "content": "hello",
                "sender_id": sender,
                "client_message_id": None,
                "created_at": "2026-12-06T00:00:00.000Z",
                "attachment": None,
            }
            | message,
        }
    )


def by_view(emits) -> dict:
    return {(e.user, e.scope): e.payload for e in emits}


def test_a_message_goes_to_every_view_each_seeing_itself():
    emits = render(message_event("2" * 24))
    assert all(e.name == "message" for e in emits)
    payloads = by_view(emits)
    assert set(payloads) == {
        ("1" * 24, scope("customer", "tc")),
        ("2" * 24, scope("customer", "ta")),
        ("2" * 24, scope("customer", "tb")),
    }
    to_customer = payloads[("1" * 24, scope("customer", "tc"))]
    assert to_customer == {
        "_id": "m" * 24,
        "message": "hello",
        "message_type": "text",
        "senderId": "a1",
        "receiverId": "HANDLE-C",
        "room_id": "5" * 24,
        "dt": "2026-12-06T00:00:00.000Z",
    }
    assert payloads[("2" * 24, scope("customer", "ta"))]["senderId"] == "HANDLE-A"
    assert payloads[("2" * 24, scope("customer", "ta"))]["receiverId"] == "c1"
    # No handle ever reaches another user's view.
    for (user, _scope), payload in payloads.items():
        text = json.dumps(payload)
        assert json.loads(text) == payload
        for owner, views in VIEWS.items():
            if owner != user:
                assert all(shown not in text for _tag, shown in views if shown.startswith("HANDLE"))


def test_media_and_link_messages_keep_their_wire_type():
    link = render(message_event("1" * 24, client_message_id="rt.vdo." + "x" * 24, content="https://v/1.mp4"))
    assert {e.payload["message_type"] for e in link} == {"vdo"}
    upload = render(
        message_event(
            "1" * 24, kind="audio", content="", attachment={"url": "https://files/a.ogg", "kind": "audio"}
        )
    )
    assert {(e.payload["message_type"], e.payload["message"]) for e in upload} == {
        ("audio", "https://files/a.ogg")
    }
    assert {
        e.payload["message_type"] for e in render(message_event("1" * 24, client_message_id="rt.exe.1"))
    } == {"text"}


def test_system_messages_and_strangers_render_nothing():
    assert render(message_event("1" * 24, kind="system")) == []
    assert render(message_event("9" * 24)) == []
    assert render({"type": "message.created", "message": {}, "conversation": CONVERSATION}) == []  # no room


def test_typing_goes_to_the_other_party_in_the_namespace():
    (emit,) = render(prepared({"type": "typing.started", "actor": "1" * 24}))
    assert (emit.name, emit.skip, emit.scope, emit.user) == ("typing", (ACTOR,), scope("customer"), None)
    assert emit.payload == {"userId": "c1", "roomID": "r-1", "success": True, "typing": True}
    assert render(prepared({"type": "typing.stopped", "actor": "1" * 24})) == []


def test_requests_reach_the_subject_only():
    created = render(prepared({"type": "chat_request.created", "actor": "1" * 24, "subject": "2" * 24}))
    assert {(e.name, e.user, e.scope) for e in created} == {
        ("join-room", "2" * 24, scope("customer", "ta")),
        ("join-room", "2" * 24, scope("customer", "tb")),
    }
    doc = created[0].payload["data"]["room"]
    assert created[0].payload["success"] is True and created[0].payload["message"] == "Joined successfully"
    assert doc == {
        "_id": "5" * 24,
        "customerID": "c1",
        "vendorID": "HANDLE-A",
        "roomID": "r-1",
        "roomId": "r-1",  # the README's spelling too (spec §4.3)
        "roomToken": "tok-1",
        "namespace": "customer",
    }
    # No room id given: neither key, as the original stored none.
    (bare,) = render(
        prepared({"type": "chat_request.accepted", "actor": "2" * 24, "subject": "1" * 24})
        | {"rt_room": ROOM | {"room_id": ""}}
    )
    assert {"roomID", "roomId"}.isdisjoint(bare.payload["data"]["room"])
    (accepted,) = render(prepared({"type": "chat_request.accepted", "actor": "2" * 24, "subject": "1" * 24}))
    assert accepted.name == "accept-room" and accepted.payload["data"]["room"]["customerID"] == "HANDLE-C"
    assert render(prepared({"type": "chat_request.declined", "actor": "2" * 24, "subject": "1" * 24})) == []


def test_leave_goes_to_every_view_of_the_other_party_only():
    left = {"type": "conversation.member_left", "actor": "2" * 24, "user": {"id": "2" * 24, "name": "Arto"}}
    emits = render(prepared(left | {"seq": 3}))
    assert all(e.name == "leave" for e in emits)
    assert by_view(emits) == {("1" * 24, scope("customer", "tc")): {"user": {"_id": "a1", "customer": True}}}
    assert json.loads(json.dumps(emits[0].payload)) == emits[0].payload
    # The customer leaving: both artisan views hear it, each by the customer's app id.
    emits = render(prepared(left | {"actor": "1" * 24, "seq": 3}))
    assert by_view(emits) == {
        ("2" * 24, scope("customer", "ta")): {"user": {"_id": "c1", "customer": True}},
        ("2" * 24, scope("customer", "tb")): {"user": {"_id": "c1", "customer": True}},
    }
    assert render(prepared(left | {"actor": "9" * 24})) == []
    assert render(prepared({"type": "conversation.member_rejoined", "actor": "2" * 24})) == []


def test_presence_tells_each_other_party_once_per_namespace():
    other_room = ROOM | {"conversation_id": "d" * 24, "token": "tok-2"}
    elsewhere = ROOM | {"conversation_id": "e" * 24, "namespace": "artisans"}
    event = {
        "type": "presence.changed",
        "user_id": "2" * 24,
        "state": "offline",
        "rt_rooms": [ROOM, other_room, elsewhere],
    }
    emits = render(event)
    assert [(e.name, e.user, e.scope, e.payload) for e in emits] == [
        ("private", "1" * 24, scope("customer"), {"userId": "a1", "event": "offline"}),
        ("private", "1" * 24, scope("artisans"), {"userId": "a1", "event": "offline"}),
    ]
    online = render(event | {"state": "background"})
    assert {e.payload["event"] for e in online} == {"online"}


@dataclass
class FakeConn:
    state: RoomTokenState


def test_a_connection_takes_its_namespace_and_its_view():
    state = RoomTokenState(namespace="customer", self_id="HANDLE-C", tag="tc")
    conn = FakeConn(state)
    assert PROTOCOL.in_scope(conn, scope("customer"))
    assert not PROTOCOL.in_scope(conn, scope("artisans"))
    assert PROTOCOL.in_scope(conn, scope("customer", "tc"))
    assert not PROTOCOL.in_scope(conn, scope("customer", "ta"))
    assert not PROTOCOL.in_scope(conn, scope("artisans", "tc"))


def test_views_are_per_connection_and_go_with_it():
    first = RoomTokenState(namespace="customer", self_id="H1", tag=selves.tag_of("H1"))
    second = RoomTokenState(namespace="artisans", self_id="H1", tag=selves.tag_of("H1"))
    third = RoomTokenState(namespace="customer", self_id="c1", tag=selves.tag_of("c1"))
    for state in (first, second, third):
        selves.add("u", state)
    views = selves.views_of(["u", "nobody"])
    assert sorted(shown for _tag, shown in views["u"]) == ["H1", "c1"] and "nobody" not in views
    selves.remove("u", first)
    selves.remove("u", second)
    assert selves.views_of(["u"]) == {"u": [[selves.tag_of("c1"), "c1"]]}
    del third, state  # a connection dropped without goodbye: its view goes with it
    gc.collect()
    assert selves.views_of(["u"]) == {}
    assert "u" not in selves._by_user  # nor its key: the registry does not grow with users seen
