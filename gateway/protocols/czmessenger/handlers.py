"""CZ Messenger's inbound half: one handler per client event (spec §4).

The original's clients expect no error, ever: a payload that is malformed, names a room the
caller is not a party of, or claims another sender is dropped without a word (the protocol's
`answer_error` sends nothing). Identity is the connection's: `from` must be the caller.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from chatproject.core.timefmt import iso_ms
from gateway import actions
from gateway.actions import call
from gateway.connection import Connection
from gateway.protocol import Handler, Outcome

from . import directory, wire
from .state import BUYER, CzState, role_of
from .store import selectors as rooms
from .store import services as room_services
from .store.selectors import RoomInfo

HANDLERS: dict[str, Handler] = {}
PayloadHandler = Callable[[Connection, dict[str, Any]], Awaitable[Outcome]]
DIRECT = "direct"


def handler(name: str) -> Callable[[PayloadHandler], PayloadHandler]:
    """Register `fn` for client event `name`; the payload is one JSON object (anything else is
    dropped)."""

    def register(fn: PayloadHandler) -> PayloadHandler:
        async def unpack(conn: Connection, args: list[Any]) -> Outcome:
            data = args[0] if args else None
            if not isinstance(data, dict):
                raise _dropped("payload")
            return await fn(conn, data)

        HANDLERS[name] = unpack
        return fn

    return register


def _dropped(field: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, f"{field} is missing or invalid.", {"field": field})


def me(conn: Connection) -> str:
    return conn.user.external_id or conn.user.public_id


def _sender_check(conn: Connection, data: dict[str, Any]) -> None:
    """`from`, when given, must be the caller (spec §8.2: the original trusted it)."""
    if "from" in data and data["from"] != me(conn):
        raise _dropped("from")


async def _room_info(conn: Connection, room_id: object) -> RoomInfo:
    """The room `room_id` of which the caller is a party: read and authorised once per
    connection, then kept (a room's ids and parties never change)."""
    state: CzState = conn.state
    known = state.rooms.get(room_id) if isinstance(room_id, str) else None
    if known is not None:
        return known
    room = await call(rooms.room_get_for_party, user=conn.user, room_id=room_id)
    info = rooms.room_info(room)
    directory.remember(info)
    if len(state.rooms) >= 256:
        state.rooms.clear()
    state.rooms[info.room_id] = info
    return info


async def _room(conn: Connection, data: dict[str, Any]) -> tuple[str, str]:
    """(room id, conversation id) of the room an event names: `room_id`, or else the room of
    the caller and `to` by the caller's role. The caller must be a party."""
    room_id = data.get("room_id")
    if not isinstance(room_id, str):
        to = data.get("to")
        if not isinstance(to, str):
            raise _dropped("room_id")
        state: CzState = conn.state
        room_id = f"{me(conn)}.{to}" if state.role == BUYER else f"{to}.{me(conn)}"
    info = await _room_info(conn, room_id)
    return info.room_id, info.conversation_id


@handler("create_room")
async def create_room(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a client opens (or re-opens) the room of a buyer and a seller; the caller
    must be one of them. Echoed to the calling socket with `_id` and `room_id`."""
    opened = await call(
        room_services.room_open,
        user=conn.user,
        buyer_id=data.get("buyer"),
        seller_id=data.get("seller"),
        creator=data.get("creator"),
        shop_id=data.get("shop_id"),
        buyer_info=data.get("buyer_info"),
        room_type=data.get("type"),
    )
    directory.remember(rooms.room_info(opened.room))
    return Outcome([("create_room", wire.create_room_echo(data, opened.room.room_id))])


@handler("new_message")
async def new_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a party sends into a room. Stored through messaging's one send path (a
    retried `client_message_id` returns the original message); the calling socket gets its
    echo at once (its ack), every other socket of both parties through the bus. A blocked room
    refuses (the core's send does: a silent drop here). No read of its own once the connection
    knows the room."""
    _sender_check(conn, data)
    room_id = data.get("room_id")
    if not isinstance(room_id, str):
        raise _dropped("room_id")
    info = await _room_info(conn, room_id)
    other = info.seller if me(conn) == info.buyer else info.buyer
    if data.get("to") is not None and data.get("to") != other:
        raise _dropped("to")
    client_message_id = data.get("client_message_id")
    image = data.get("type") == "IMAGE" and rooms.looks_like_image_link(
        content=data.get("content"), client_message_id=client_message_id or ""
    )
    if image:
        # An IMAGE whose content is a URL: stored as text (the core's images are uploads), its
        # wire type kept by the protocol, keyed by the client id, before the send.
        client_message_id = client_message_id or f"czimg-{new_public_id()}"
        await call(
            room_services.image_link_mark,
            user=conn.user,
            room_id=room_id,
            client_message_id=client_message_id,
        )
    sent = await actions.send(
        conn,
        conversation_id=info.conversation_id,
        content=data.get("content"),
        client_message_id=client_message_id,
        kind=DIRECT,
        message_kind="emoji" if data.get("type") == "EMOJI" else None,
    )
    message = sent.message
    echo = wire.new_message(
        room_id=info.room_id,
        sender=me(conn),
        recipient=other,
        kind="image" if image and message.kind == "text" else message.kind,
        content=message.content,
        client_message_id=message.client_message_id,
        message_id=message.public_id,
        created_at=iso_ms(message.created_at),
    )
    return Outcome([("new_message", echo)])


async def _typing(conn: Connection, data: dict[str, Any], started: bool) -> Outcome:
    _sender_check(conn, data)
    _room_id, conversation_id = await _room(conn, data)
    await actions.typing(conn, conversation_id=conversation_id, started=started)
    return Outcome()


@handler("typing")
async def typing(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called while a party types; the other party's sockets get `typing`."""
    return await _typing(conn, data, True)


@handler("stop_typing")
async def stop_typing(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a party stopped typing (with or without `room_id`; without `to` too when
    `room_id` is there)."""
    return await _typing(conn, data, False)


@handler("seen_messages")
async def seen_messages(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a party has seen the room's messages: `message_ids` (older clients), or
    `last_message_id` / `last_message_created_at`. Moves the caller's read pointer; the other
    party gets `seen_messages`."""
    _sender_check(conn, data)
    room_id, conversation_id = await _room(conn, data)
    ids, last_id = data.get("message_ids"), data.get("last_message_id")
    if ids is not None:
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids[:100]):
            raise _dropped("message_ids")
        await actions.mark_read(conn, conversation_id=conversation_id, message_ids=ids[:100])
        return Outcome()
    if not isinstance(last_id, str):
        room = await call(rooms.room_get_for_party, user=conn.user, room_id=room_id)
        last_id = await call(rooms.read_target_at, room=room, created_at=data.get("last_message_created_at"))
        if last_id is None:
            raise _dropped("last_message_created_at")
    await actions.mark_read(conn, conversation_id=conversation_id, last_message_id=last_id)
    return Outcome()


@handler("verify_user")
async def verify_user(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called by clients after a Socket.IO reconnect. The connection was authenticated at its
    handshake, so this only confirms that the ids match it: `{"status": true}`, or false for a
    `user_id` that is not the connection's or an empty token, and then the server disconnects
    the socket (as the original did)."""
    token, user_id = data.get("token"), data.get("user_id")
    ok = isinstance(token, str) and bool(token) and user_id in (None, me(conn))
    if ok and "user_role" in data:
        conn.state.role = role_of(data["user_role"])
    return Outcome([("verify_user", {"status": ok})], close=not ok)
