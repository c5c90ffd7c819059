"""Pure parts of CHAT SERVER: wire shapes, render, per-connection state, refusals."""

import base64
import json
from types import SimpleNamespace

from chatproject.core.errors import ApplicationError, ErrorCode
from gateway.protocols.chatserver import PROTOCOL
from gateway.protocols.chatserver.render import render
from gateway.protocols.chatserver.state import JOINED_MAX, ChatServerState
from gateway.protocols.chatserver.wire import b64, message_from_event, split_name
from gateway.transports.handshake import Handshake

MESSAGE = {"id": "m1", "kind": "text", "content": "héllo 👋", "sender_name": "Ann Lee", "created_at": "t"}


def test_b64_is_standard_base64_of_utf8():
    assert b64("hello sumit") == "aGVsbG8gc3VtaXQ="
    assert base64.b64decode(b64("héllo 👋")).decode() == "héllo 👋"


def test_names_split_on_the_first_space():
    assert split_name("Ann Mary Lee") == ("Ann", "Mary Lee")
    assert split_name("Ann") == ("Ann", "")


def test_message_created_renders_message_in_base64_scoped_to_the_room():
    event = {"type": "message.created", "actor": "u1", "conversation": {"id": "c1"}, "message": MESSAGE}
    [emit] = render(event)
    assert (emit.name, emit.scope, emit.skip, emit.skip_origin) == ("message", "c1", (), False)
    assert emit.payload["message"] == b64("héllo 👋")
    assert emit.payload["user"]["firstName"] == "Ann" and "token" not in emit.payload["user"]
    json.dumps(emit.payload)


def test_system_messages_are_not_rendered():
    message = {**MESSAGE, "kind": "system"}
    assert render({"type": "message.created", "conversation": {"id": "c1"}, "message": message}) == []


def test_edit_rerenders_base64_text_not_ciphertext():
    message = {**MESSAGE, "content": "new", "edited_at": "t2"}
    [emit] = render(
        {"type": "message.edited", "actor": "u1", "conversation": {"id": "c1"}, "message": message}
    )
    assert emit.payload["message"] == b64("new") and emit.payload["updatedAt"] == "t2"


def test_delete_typing_and_read_render():
    base = {"actor": "u1", "actor_name": "Ann Lee", "conversation": {"id": "c1"}}
    [deleted] = render({**base, "type": "message.deleted", "message": {"id": "m1"}})
    assert (deleted.name, deleted.payload) == ("delete", {"id": "m1", "roomId": "c1"})
    [typing] = render({**base, "type": "typing.started"})
    assert typing.name == "is_typing" and typing.payload["typing"] is True
    assert typing.payload["data"]["id"] == "u1"
    [stopped] = render({**base, "type": "typing.stopped"})
    assert stopped.payload["typing"] is False
    [seen] = render({**base, "type": "conversation.read", "seq": 3})
    assert (seen.name, seen.receipt, seen.scope) == ("seen_by", True, "c1")
    for emit in (deleted, typing, stopped, seen):
        json.dumps(emit.payload)


def test_other_events_render_nothing():
    assert render({"type": "group.created", "conversation": {"id": "c1"}}) == []
    assert render({"type": "session.revoked", "user_id": "u1"}) == []


def test_message_payload_keeps_the_original_keys():
    payload = message_from_event("c1", "u1", MESSAGE)
    assert set(payload) == {
        "id",
        "roomId",
        "message",
        "userId",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "user",
    }


def test_state_targets_the_last_joined_room_and_falls_back_on_leave():
    state = ChatServerState()
    state.join("a", "room-a")
    state.join("b", "room-b")
    assert state.current == "b"
    state.join("a", "room-a")
    assert state.current == "a"
    state.leave("a")
    assert state.current == "b" and list(state.rooms) == ["b"]
    state.leave("b")
    assert state.current is None


def test_state_is_bounded():
    state = ChatServerState()
    for i in range(JOINED_MAX + 5):
        state.join(str(i), f"r{i}")
    assert len(state.rooms) == JOINED_MAX and state.current == str(JOINED_MAX + 4)


def test_in_scope_only_for_joined_rooms():
    state = ChatServerState()
    state.join("c1", "r")
    conn = SimpleNamespace(state=state)
    assert PROTOCOL.in_scope(conn, "c1") and not PROTOCOL.in_scope(conn, "c2")


def test_credentials_only_from_the_query_token():
    assert PROTOCOL.credentials(Handshake(auth={"token": "x"}, headers={}, query={})).access is None
    assert PROTOCOL.credentials(Handshake(auth=None, headers={}, query={"token": "abc"})).access == "abc"


def test_refusal_texts_are_the_originals():
    none = PROTOCOL.refusal(ApplicationError(ErrorCode.NOT_AUTHENTICATED, "No credentials found."))
    bad = PROTOCOL.refusal(ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Token revoked."))
    assert none.connect_error == "No token key found" and bad.connect_error == "token key mismatch"
    assert PROTOCOL.connect_first is False


def test_errors_are_err_strings_and_unknown_events_are_ignored():
    conn = SimpleNamespace()
    answer = PROTOCOL.answer_error(conn, "join", ApplicationError(ErrorCode.INVALID, "Input room name"))
    assert answer.emits == [("err", "Input room name")] and answer.ack is None
    unknown = PROTOCOL.answer_error(conn, "x", ApplicationError(ErrorCode.INVALID, "Unknown event."))
    assert unknown.emits == []


def test_room_entered_and_left_render_info_to_others_and_room_data_to_all():
    base = {"actor": "u1", "conversation": {"id": "c1"}, "name": "lobby", "online": ["u1", "u2"]}
    info, data = render({**base, "type": "room.entered"})
    assert (info.name, info.payload, info.skip, info.scope) == ("info", "u1 has joined!", ("actor",), "c1")
    assert data.name == "roomData" and data.skip == () and data.scope == "c1"
    assert data.payload == {
        "room": "lobby",
        "users": [{"room": "lobby", "roomId": "c1", "sender": u} for u in ("u1", "u2")],
    }
    left, _data = render({**base, "type": "room.left", "online": ["u2"]})
    assert left.payload == "u1 has left"
    json.dumps(data.payload)
