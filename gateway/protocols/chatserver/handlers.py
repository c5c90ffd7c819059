"""CHAT SERVER's inbound half: one handler per client event (spec §4.1).

Each validates its argument, calls one gateway action (or one service or selector through
`actions.call`) with the connection's user, and returns what goes back to the caller. Refusals
are `err` with the original strings; malformed arguments never raise anything but an
ApplicationError (spec §8.8). Events that need a joined room are ignored without one, as the
original did, except `send_message`, which answers `err`.
"""

from collections.abc import Callable
from typing import Any

from chatproject.core.errors import ApplicationError, ErrorCode
from gateway import actions
from gateway.actions import call
from gateway.connection import Connection
from gateway.protocol import Handler, Outcome
from messaging import services as msg_services
from tenants import rooms

from .state import ChatServerState
from .wire import (
    INFO,
    INPUT_ROOM,
    INVALID_ROOM,
    JOINED,
    LOAD_MORE,
    NO_MESSAGE,
    ROOM_INFO,
    message_of,
    room_payload,
)

HANDLERS: dict[str, Handler] = {}
GROUP = "group"
TRUE_VALUES = (True, "true")


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def err(text: str) -> ApplicationError:
    """A refusal told as `err <text>`."""
    return ApplicationError(ErrorCode.INVALID, text)


def _state(conn: Connection) -> ChatServerState:
    return conn.state


def _arg(args: list[Any]) -> Any:
    return args[0] if args else None


@handler("join")
async def join(conn: Connection, args: list[Any]) -> Outcome:
    """Called when the client joins a room by name: it must be a current member of the room of
    that name in its own app."""
    name = _arg(args)
    if not isinstance(name, str) or not name:
        raise err(INPUT_ROOM)
    try:
        room = await call(rooms.app_room_for_member, user=conn.user, name=name)
    except ApplicationError:
        raise err(INVALID_ROOM) from None
    members = await call(rooms.app_room_members, room=room)
    conversation_id = room.conversation.public_id
    _state(conn).join(conversation_id, room.name)
    member_ids = [m.public_id for m in members]

    async def announce() -> None:
        # Everyone in the room, this socket included, gets `roomData` through the bus, after
        # this socket's own `info` and `room_info` (the original's order); the others also get
        # `info "<id> has joined!"`.
        online = await _online(conn, member_ids)
        await actions.room_presence(
            conn, conversation_id=conversation_id, entered=True, online=online, name=room.name
        )

    return Outcome([(INFO, JOINED), (ROOM_INFO, room_payload(room, members))], after=announce)


async def _online(conn: Connection, user_ids: list[str]) -> list[str]:
    """The members connected now (presence, across processes); the caller always counts."""
    presence = await actions.presence_fetch(conn, user_ids)
    return [p.user_id for p in presence if p.online or p.user_id == conn.user_id]


@handler("leave")
async def leave(conn: Connection, args: list[Any]) -> Outcome:
    """Called when the client leaves its current room (or the room it names): its events stop
    reaching this socket. Membership is unchanged (the tenant's backend removes members)."""
    state, name = _state(conn), _arg(args)
    target = next((c for c, n in state.rooms.items() if n == name), None) if isinstance(name, str) else None
    target = target or state.current
    if target is None:
        return Outcome()
    name = state.rooms[target]
    state.leave(target)
    await announce_leave(conn, conversation_id=target, name=name)
    return Outcome()


async def announce_leave(conn: Connection, *, conversation_id: str, name: str) -> None:
    """The rest of the room hears `info "<id> has left"` and `roomData`, as long as the user is
    still a member (a removed member's room has been told already)."""
    try:
        room = await call(rooms.app_room_for_member, user=conn.user, name=name)
        members = await call(rooms.app_room_members, room=room)
        online = [u for u in await _online(conn, [m.public_id for m in members]) if u != conn.user_id]
        await actions.room_presence(
            conn, conversation_id=conversation_id, entered=False, online=online, name=name
        )
    except ApplicationError:
        pass


@handler("typing")
async def typing(conn: Connection, args: list[Any]) -> Outcome:
    """Called while the user types (`true`) or stops (`false`); everyone in the room, the sender
    included, gets `is_typing`."""
    current = _state(conn).current
    if current is not None:
        await actions.typing(conn, conversation_id=current, started=_arg(args) in TRUE_VALUES)
    return Outcome()


@handler("seen")
async def seen(conn: Connection, args: list[Any]) -> Outcome:
    """Called when the user has seen the room: moves their read pointer to the newest message;
    everyone in the room gets `seen_by`."""
    current = _state(conn).current
    if current is not None:
        await actions.mark_read(conn, conversation_id=current, kind=GROUP)
    return Outcome()


@handler("send_message")
async def send_message(conn: Connection, args: list[Any]) -> Outcome:
    """Called with a message's plain text; everyone in the room, the sender included, gets
    `message` with the text in base64."""
    text, current = _arg(args), _state(conn).current
    if current is None or not isinstance(text, str) or not text:
        raise err(NO_MESSAGE)
    await actions.send(conn, conversation_id=current, content=text, kind=GROUP)
    return Outcome()


@handler("load_more")
async def load_more(conn: Connection, args: list[Any]) -> Outcome:
    """Called with `{page, limit}` (both optional; the argument too): one page of the current
    room, newest first, to the caller."""
    current, options = _state(conn).current, _arg(args)
    if current is None:
        return Outcome()
    options = options if isinstance(options, dict) else {}
    name = _state(conn).rooms[current]
    room = await call(rooms.app_room_for_member, user=conn.user, name=name)
    page = await call(
        rooms.app_room_page, user=conn.user, room=room, page=options.get("page"), limit=options.get("limit")
    )
    return Outcome([(LOAD_MORE, [message_of(m) for m in page.messages])])


@handler("update")
async def update(conn: Connection, args: list[Any]) -> Outcome:
    """Called with `{id, message}` to edit one's own message in the current room; the room gets
    `message` again, with the new text in base64."""
    data, current = _arg(args), _state(conn).current
    if current is None:
        return Outcome()
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), str)
        or not isinstance(data.get("message"), str)
    ):
        raise err("update needs {id, message}.")
    await call(
        msg_services.message_edit,
        user=conn.user,
        message_id=data["id"],
        content=data["message"],
        conversation_id=current,
        origin=conn.id,
    )
    return Outcome()


@handler("delete")
async def delete(conn: Connection, args: list[Any]) -> Outcome:
    """Called with a message id (or `{id}`) to delete one's own message in the current room:
    a soft delete; the room gets `delete {id, roomId}`."""
    data, current = _arg(args), _state(conn).current
    if current is None:
        return Outcome()
    message_id = data.get("id") if isinstance(data, dict) else data
    if not isinstance(message_id, str):
        raise err("delete needs a message id.")
    await call(msg_services.message_delete, user=conn.user, message_id=message_id, conversation_id=current)
    return Outcome()
