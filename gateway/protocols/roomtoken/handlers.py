"""Seed 002's inbound half: one handler per client event (spec §4).

The original's clients expect no error event: a malformed payload, an unknown room or a room
the caller is no party of is dropped without a word (the protocol's `answer_error` sends
nothing), except `join-room` / `accept-room`, whose failures the client hears as `joined`
`{"success": false, "message"}`. Identity is the connection's, never the payload's: the ids a
payload names only say which side of a new room the caller takes.
"""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from chatproject.core.errors import ApplicationError, ErrorCode
from gateway import actions
from gateway.actions import call
from gateway.connection import Connection
from gateway.protocol import Handler, Outcome
from messaging.models import Conversation

from . import directory, wire
from .state import RoomTokenState
from .store import selectors as rooms
from .store import services as room_services
from .store.selectors import RoomInfo

HANDLERS: dict[str, Handler] = {}
PayloadHandler = Callable[[Connection, dict[str, Any]], Awaitable[Outcome]]
DIRECT = Conversation.Kind.DIRECT
ROOMS_KEPT = 64  # rooms one connection keeps looked up (sends and typing are frequent)


def handler(name: str) -> Callable[[PayloadHandler], PayloadHandler]:
    """Register `fn` for client event `name`: the payload is the first argument, an object."""

    def register(fn: PayloadHandler) -> PayloadHandler:
        async def unpack(conn: Connection, args: list[Any]) -> Outcome:
            data = args[0] if args else None
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise _dropped("payload")
            return await fn(conn, data)

        HANDLERS[name] = unpack
        return fn

    return register


def _dropped(field: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, f"Bad {field}.", {"field": field})


def _id(value: object) -> str | None:
    """An id as the original compared them: a string, or a number written as one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def names_me(conn: Connection, value: object) -> bool:
    """Whether a payload id names the caller: its own `userId`, its id in the app, or its
    public id."""
    state: RoomTokenState = conn.state
    return _id(value) in {state.self_id, conn.user.external_id, conn.user_id} - {None, ""}


async def _room(conn: Connection, data: dict[str, Any]) -> RoomInfo:
    """The room a payload's `roomToken` names in this namespace, if the caller is a party."""
    state: RoomTokenState = conn.state
    token = data.get("roomToken")
    if not isinstance(token, str):
        raise _dropped("roomToken")
    info = state.rooms.get(token)
    if info is None:
        room = await call(rooms.room_get_for_party, user=conn.user, namespace=state.namespace, token=token)
        info = _keep(state, rooms.room_info(room))
    return info


def _keep(state: RoomTokenState, info: RoomInfo) -> RoomInfo:
    directory.remember(info)
    if len(state.rooms) >= ROOMS_KEPT:
        state.rooms.clear()
    state.rooms[info.token] = info
    return info


@handler("heartbeat")
async def heartbeat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called every few minutes by the original's clients to stay "online". Presence here is the
    gateway's (the transport's pings keep a connection alive), so there is nothing to do."""
    return Outcome()


async def _join(conn: Connection, data: dict[str, Any]) -> Outcome:
    state: RoomTokenState = conn.state
    customer, vendor = data.get("customerID"), data.get("vendorID")
    if names_me(conn, customer):
        role, other = room_services.CUSTOMER, _id(vendor)
    elif names_me(conn, vendor):
        role, other = room_services.VENDOR, _id(customer)
    else:
        return Outcome([("joined", wire.failure(wire.INVALID_CUSTOMER))])
    try:
        joined = await call(
            room_services.room_join,
            user=conn.user,
            namespace=state.namespace,
            token=data.get("roomToken"),
            role=role,
            other_id=other,
            room_id=data.get("roomID", data.get("roomId")),
        )
    except ApplicationError as refused:
        return Outcome([("joined", wire.failure(refused.message))])
    info = _keep(state, rooms.room_info(joined.room))
    doc = wire.room_doc(
        asdict(info), lambda user_id: state.self_id if user_id == conn.user_id else _party(info, user_id)
    )
    return Outcome([("joined", wire.joined(doc))])


def _party(info: RoomInfo, user_id: str) -> str:
    return info.customer if user_id == info.customer_id else info.vendor


@handler("join-room")
async def join_room(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called to open a room (a chat request to the other party, who gets `join-room`) or to
    join one the caller is a party of (joining a room whose request waits for the caller
    accepts it). The caller gets `joined`, success or not."""
    return await _join(conn, data)


@handler("accept-room")
async def accept_room(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the other party accepts a room's request: the requester gets `accept-room`,
    the caller `joined`. The same logic as join-room (the original's too)."""
    return await _join(conn, data)


@handler("message")
async def message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called to write into a room. Only a member may (the core's send checks it: a request's
    recipient writes once they accepted); every socket of both parties in the room gets
    `message`, the sender's included, through the bus."""
    kind = data.get("type", "text")
    if kind not in wire.TYPES:
        raise _dropped("type")
    info = await _room(conn, data)
    await actions.send(
        conn,
        conversation_id=info.conversation_id,
        content=data.get("message"),
        client_message_id=None if kind == "text" else wire.link_client_id(kind),
        kind=DIRECT,
    )
    return Outcome()


@handler("typing")
async def typing(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called while the user types: every socket of the other party gets `typing` (members
    only: the core's typing target checks membership)."""
    info = await _room(conn, data)
    await actions.typing(conn, conversation_id=info.conversation_id, started=True)
    return Outcome()


@handler("leave-room")
async def leave_room(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the user leaves a room (the original's intent: unset their side of it). Their
    membership of the room's conversation ends (`conversation_leave`): none of their sockets gets
    the room's messages or typing any more, and they can neither write nor read its history here;
    the other party's sockets get `leave`, the caller the `leave-room` ack. The seat stays theirs:
    `join-room` / `accept-room` brings them back. A room the caller is not in: dropped."""
    state: RoomTokenState = conn.state
    room = await call(
        room_services.room_leave, user=conn.user, namespace=state.namespace, token=data.get("roomToken")
    )
    info = _keep(state, rooms.room_info(room))  # also drops the parties' cached room lists
    return Outcome([("leave-room", wire.left(info.token))])
