"""CZ Messenger's render: prepared domain events -> wire events and audiences. Pure."""

import json

from gateway.audience import ACTOR, ALL
from gateway.protocols.czmessenger.render import render
from gateway.protocols.czmessenger.wire import active_user_list, create_room_echo

ROOM = {
    "room_id": "b9.u1",
    "conversation_id": "C1",
    "buyer_id": "PB",
    "seller_id": "PS",
    "buyer": "b9",
    "seller": "u1",
}


def _message(sender="PB", kind="text", **extra):
    return {
        "type": "message.created",
        "actor": sender,
        "conversation": {"id": "C1", "kind": "direct"},
        "message": {
            "id": "M1",
            "seq": 3,
            "kind": kind,
            "content": "hello",
            "sender_id": sender,
            "client_message_id": "c-1",
            "created_at": "2026-01-02T03:04:05.678Z",
            **extra,
        },
        "czm_room": ROOM,
    }


def _one(event):
    (emit,) = render(event)
    json.dumps(emit.payload)  # survives the bus and the wire
    return emit


def test_a_message_becomes_new_message_for_both_parties_but_the_sending_socket():
    emit = _one(_message())
    assert emit.name == "new_message" and emit.to == ALL and emit.skip_origin
    assert emit.payload == {
        "room_id": "b9.u1",
        "from": "b9",
        "to": "u1",
        "type": "TEXT",
        "content": "hello",
        "client_message_id": "c-1",
        "_id": "M1",
        "created_at": "2026-01-02T03:04:05.678Z",
    }


def test_a_seller_message_names_the_seller_as_from_and_emoji_keeps_its_type():
    payload = _one(_message(sender="PS", kind="emoji")).payload
    assert (payload["from"], payload["to"], payload["type"]) == ("u1", "b9", "EMOJI")


def test_no_client_message_id_is_left_out():
    assert "client_message_id" not in _one(_message(client_message_id=None)).payload


def test_events_of_conversations_without_a_room_and_system_messages_render_nothing():
    assert render({**_message(), "czm_room": None}) == []
    assert render(_message(kind="system")) == []
    assert render(_message(sender="SOMEONE")) == []


def test_typing_and_stop_typing_go_to_the_other_party():
    event = {
        "type": "typing.started",
        "actor": "PS",
        "conversation": {"id": "C1", "kind": "direct"},
        "czm_room": ROOM,
    }
    emit = _one(event)
    assert (emit.name, emit.payload, emit.skip) == (
        "typing",
        {"room_id": "b9.u1", "from": "u1", "to": "b9"},
        (ACTOR,),
    )
    assert _one(event | {"type": "typing.stopped"}).name == "stop_typing"


def test_a_read_becomes_seen_messages_in_both_shapes_as_a_receipt():
    event = {
        "type": "conversation.read",
        "actor": "PB",
        "seq": 3,
        "conversation": {"id": "C1", "kind": "direct"},
        "czm_room": ROOM,
        "czm_seen": {"id": "M1", "created_at": "2026-01-02T03:04:05.678Z"},
    }
    emit = _one(event)
    assert emit.name == "seen_messages" and emit.receipt and emit.skip == (ACTOR,)
    assert emit.payload == {
        "room_id": "b9.u1",
        "from": "b9",
        "to": "u1",
        "last_message_id": "M1",
        "last_message_created_at": "2026-01-02T03:04:05.678Z",
        "message_ids": ["M1"],
    }
    assert render({**event, "czm_seen": None}) == []


def test_presence_tells_each_rooms_counterpart_only():
    other = {**ROOM, "room_id": "b7.u1", "buyer_id": "PB7", "buyer": "b7"}
    event = {
        "type": "presence.changed",
        "actor": "PS",
        "user_id": "PS",
        "state": "offline",
        "last_seen": None,
        "czm_rooms": [ROOM, other],
    }
    emits = render(event)
    assert [(e.name, e.user, e.payload) for e in emits] == [
        (
            "user_status_change",
            "PB",
            {"user_id": "u1", "user_role": "SELLER", "room_id": "b9.u1", "status": False},
        ),
        (
            "user_status_change",
            "PB7",
            {"user_id": "u1", "user_role": "SELLER", "room_id": "b7.u1", "status": False},
        ),
    ]
    online = render(event | {"state": "foreground", "user_id": "PB", "czm_rooms": [ROOM]})
    assert [(e.user, e.payload["status"], e.payload["user_role"]) for e in online] == [("PS", True, "BUYER")]


def test_room_deletion_goes_to_both_parties():
    event = {
        "type": "czmessenger.room_deleted",
        "actor": "PS",
        "room_id": "b9.u1",
        "buyer": "b9",
        "seller": "u1",
        "deletion_role": "SELLER",
    }
    emit = _one(event)
    assert (emit.name, emit.to) == ("room_deletion", ALL)
    assert emit.payload == {"room_id": "b9.u1", "seller": "u1", "buyer": "b9", "deletion_role": "SELLER"}


def test_unknown_events_render_nothing():
    assert render({"type": "group.created"}) == []


def test_create_room_echo_whitelists_keys_and_carries_both_ids():
    echo = create_room_echo(
        {"type": "BS", "buyer": "b9", "seller": "u1", "evil": 1, "buyer_info": {"name": "N", "x": 1}}, "b9.u1"
    )
    assert echo == {
        "type": "BS",
        "buyer": "b9",
        "seller": "u1",
        "buyer_info": {"name": "N"},
        "_id": "b9.u1",
        "room_id": "b9.u1",
    }


def test_active_user_list_is_a_list_even_when_empty():
    assert active_user_list(user_id="b9", role="BUYER", rooms=[]) == {
        "user_id": "b9",
        "user_role": "BUYER",
        "rooms": [],
    }


def test_a_text_message_prepared_as_an_image_link_is_rendered_as_image():
    event = _message(content="https://cdn.example/a.jpg") | {"czm_image": True}
    assert _one(event).payload["type"] == "IMAGE"
    assert _one(_message(content="https://cdn.example/a.jpg")).payload["type"] == "TEXT"
