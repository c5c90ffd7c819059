"""The private chat protocol's inbound half: one handler per client event (spec §2.5).

Arguments are positional, as the app sends them. Where the app sends its own id (the "self"
positions), that value must be the handle this socket is bound with, or the event is ignored;
every other id is a public id, checked against the bound user's rooms and realm by the services.
Anything malformed or not allowed raises ApplicationError, which this protocol never answers: the
app has no error channel, and the original ignored (or crashed on) such events.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from django.conf import settings

from accounts import friends
from accounts.identity import secret_digest
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id
from gateway import actions
from gateway.actions import call
from gateway.connection import Connection
from gateway.presence import BACKGROUND, FOREGROUND
from gateway.protocol import Handler, Outcome
from messaging import selectors as msg_selectors
from messaging import services as msg_services
from messaging.models import Conversation

from . import selectors, wire
from .state import PrivateChatState

HANDLERS: dict[str, Handler] = {}
DIRECT = Conversation.Kind.DIRECT
IGNORED = ApplicationError(ErrorCode.INVALID, "Ignored.")


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def arg(args: list[Any], index: int) -> Any:
    return args[index] if len(args) > index else None


def field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


# Where each event carries the sender's own id (the handle): what binds an unbound socket.
SELF_ARGUMENT: dict[str, Callable[[list[Any]], Any]] = {
    wire.IDENTITY: lambda args: arg(args, 0),
    wire.GET_ACTIVE_CHATS: lambda args: arg(args, 0),
    wire.NOTIFY_ONLINE: lambda args: arg(args, 0),
    wire.ACTIVE_APP: lambda args: arg(args, 0),
    wire.BACKGROUND_APP: lambda args: arg(args, 0),
    wire.READ_MESSAGES: lambda args: arg(args, 1),
    wire.ADD_FRIEND: lambda args: arg(args, 1),
    wire.SEND_MESSAGE: lambda args: field(arg(args, 0), "senderId"),
    wire.INIT_CHAT: lambda args: field(arg(args, 0), "userId"),
}


def self_argument(event: str, args: list[Any]) -> str | None:
    pick = SELF_ARGUMENT.get(event)
    value = pick(args) if pick else None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


async def _require_self(conn: Connection, event: str, args: list[Any]) -> None:
    """The event's self argument must be the handle this socket is bound with."""
    value = self_argument(event, args)
    if value is None:
        raise IGNORED
    state: PrivateChatState = conn.state
    digest = secret_digest(value)
    if state.handle_digest is not None:
        if not hmac.compare_digest(digest, state.handle_digest):
            raise IGNORED
        return
    kind, _, handle_id = conn.session_id.partition(":")
    if kind != "h" or not await call(selectors.handle_matches, handle_id=handle_id, digest=digest):
        raise IGNORED
    state.handle_digest = digest


async def _direct_target(conn: Connection, room_id: object) -> msg_selectors.TypingTarget:
    """A direct conversation the bound user is in (not found otherwise)."""
    if not isinstance(room_id, str):
        raise IGNORED
    target = await call(msg_selectors.conversation_typing_target, user=conn.user, conversation_id=room_id)
    if target.kind != DIRECT:
        raise IGNORED
    return target


@handler(wire.IDENTITY)
async def identity(conn: Connection, args: list[Any]) -> Outcome:
    """Called first by every new socket with the user's handle: it binds the socket (the hub did,
    through `claim`); every room of the user reaches it from now on."""
    await _require_self(conn, wire.IDENTITY, args)
    return Outcome()


@handler(wire.GET_ACTIVE_CHATS)
async def get_active_chats(conn: Connection, args: list[Any]) -> Outcome:
    """Called at socket start: the user's active rooms (list form) to the caller, always an
    array."""
    await _require_self(conn, wire.GET_ACTIVE_CHATS, args)
    rooms = await call(selectors.active_rooms, user=conn.user)
    return Outcome([(wire.GET_ACTIVE_CHATS, wire.rooms(rooms))])


async def _device_state(conn: Connection, event: str, args: list[Any], state: str) -> Outcome:
    await _require_self(conn, event, args)
    await actions.presence_set(conn, state)
    return Outcome()


@handler(wire.NOTIFY_ONLINE)
async def notify_online(conn: Connection, args: list[Any]) -> Outcome:
    """Called at socket start: this device is in the foreground. The user's chat partners hear
    `get online info {isOnline: true}` through presence when that changes what they see."""
    return await _device_state(conn, wire.NOTIFY_ONLINE, args, FOREGROUND)


@handler(wire.ACTIVE_APP)
async def active_app(conn: Connection, args: list[Any]) -> Outcome:
    """Called when the app comes to the foreground."""
    return await _device_state(conn, wire.ACTIVE_APP, args, FOREGROUND)


@handler(wire.BACKGROUND_APP)
async def background_app(conn: Connection, args: list[Any]) -> Outcome:
    """Called when the app goes to the background: this device only (the user stays online while
    another device is in the foreground)."""
    return await _device_state(conn, wire.BACKGROUND_APP, args, BACKGROUND)


@handler(wire.JOIN_ROOM)
async def join_room(conn: Connection, args: list[Any]) -> Outcome:
    """Called with the ids of the user's rooms after `get active chats`. A bound socket already
    receives every room of its user and no other, so there is nothing to join: ids of other
    people's rooms (or socket ids) join nothing."""
    room_ids = arg(args, 0)
    if not isinstance(room_ids, list) or len(room_ids) > settings.CHAT["CONVERSATION_LIST_LIMIT"]:
        raise IGNORED
    return Outcome()


@handler(wire.LEAVE_ROOM)
async def leave_room(conn: Connection, args: list[Any]) -> Outcome:
    """Never sent by the app; accepted and ignored (a user receives their rooms while
    connected, as the app expects for its unread badges)."""
    return Outcome()


@handler(wire.GET_ONLINE_INFO)
async def get_online_info(conn: Connection, args: list[Any]) -> Outcome:
    """Called by the Chat screen with the partner's public id: whether some device of theirs is
    connected and in the foreground, to the caller. Users the caller shares no chat with are
    offline to them."""
    recipient_id = arg(args, 0)
    if not is_public_id(recipient_id):
        raise IGNORED
    found = await actions.presence_fetch(conn, [recipient_id])
    is_online = any(p.user_id == recipient_id and p.state == FOREGROUND for p in found)
    return Outcome([(wire.GET_ONLINE_INFO, wire.online(recipient_id, is_online))])


@handler(wire.NOTIFY_TYPING)
async def notify_typing(conn: Connection, args: list[Any]) -> Outcome:
    """Called with (isTyping, roomId): the other participant of that room, and only of that
    room, gets the bare boolean."""
    is_typing, room_id = arg(args, 0), arg(args, 1)
    if not isinstance(is_typing, bool):
        raise IGNORED
    target = await _direct_target(conn, room_id)
    await actions.typing(conn, conversation_id=target.conversation_id, started=is_typing)
    return Outcome()


@handler(wire.INIT_CHAT)
async def init_chat(conn: Connection, args: list[Any]) -> Outcome:
    """Called with {userId, friendId} when the user opens a chat: the direct conversation with
    that user (created on first use, never with oneself), to the caller."""
    await _require_self(conn, wire.INIT_CHAT, args)
    friend_id = field(arg(args, 0), "friendId")
    if not isinstance(friend_id, str):
        raise IGNORED
    was_active = await call(selectors.direct_room_active, user=conn.user, other_user_id=friend_id)
    conversation, _partner, created = await call(
        msg_services.direct_conversation_get_or_create, user=conn.user, other_user_id=friend_id
    )
    room = await call(selectors.room_of, conversation=conversation)
    if len(room.participants) != 2:  # the partner is not in it (yet): the Chat screen needs them
        raise IGNORED
    payload = {"room": wire.room(room), "isNewActive": created or not was_active, "friendId": friend_id}
    return Outcome([(wire.INIT_CHAT, payload)])


@handler(wire.SEND_MESSAGE)
async def send_message(conn: Connection, args: list[Any]) -> Outcome:
    """Called with {senderId, recipientId, roomId, message}: stored through the core's send;
    both participants' sockets (the sender's included) get `send message` from the bus. The
    recipient must be the room's other participant."""
    await _require_self(conn, wire.SEND_MESSAGE, args)
    data = arg(args, 0)
    text, recipient_id = field(data, "message"), field(data, "recipientId")
    if not isinstance(text, str) or not text:
        raise IGNORED
    target = await _direct_target(conn, field(data, "roomId"))
    if recipient_id not in target.peer_ids:
        raise IGNORED
    await actions.send(conn, conversation_id=target.conversation_id, content=text, kind=DIRECT)
    return Outcome()


@handler(wire.FETCH_MESSAGES)
async def fetch_messages(conn: Connection, args: list[Any]) -> Outcome:
    """Called with a room id when the Chat screen opens: its newest messages, oldest first, to
    the caller."""
    target = await _direct_target(conn, arg(args, 0))
    lines = await call(selectors.room_lines, conversation_id=target.conversation_id)
    return Outcome([(wire.FETCH_MESSAGES, [wire.message(line) for line in lines])])


@handler(wire.READ_MESSAGES)
async def read_messages(conn: Connection, args: list[Any]) -> Outcome:
    """Called with (roomId, own id) when the user sees a room: their read pointer moves to the
    newest message; once committed, both participants get `read messages` from the bus."""
    await _require_self(conn, wire.READ_MESSAGES, args)
    target = await _direct_target(conn, arg(args, 0))
    await actions.mark_read(conn, conversation_id=target.conversation_id, kind=DIRECT)
    return Outcome()


@handler(wire.ADD_FRIEND)
async def add_friend(conn: Connection, args: list[Any]) -> Outcome:
    """Called with (friendId, own id): both become friends (accounts.friends); each side's
    sockets get `add friend` with the other's user, from the bus. Adding a friend again changes
    and sends nothing."""
    await _require_self(conn, wire.ADD_FRIEND, args)
    await call(friends.friend_add, user=conn.user, friend_id=arg(args, 0))
    return Outcome()
