"""What protocols call: the gateway's actions facade over the core.

A protocol handler validates the shape of its payload, then calls one action (or one service or
selector through `call`) with the connection's user, and renders the result. The machinery
behind an action (the send batcher, the typing throttle and its access cache, the presence
tracker, the database thread) stays here: no protocol touches a batcher, a queue or a cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.tokens import access_decode, user_for_claims
from chatproject.bus import publish_now
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.ops import metrics
from messaging import events as msg_events
from messaging import selectors as msg_selectors
from messaging import services as msg_services
from messaging.models import Conversation, Message
from messaging.services import SendRequest

from . import lanes, presence
from .batching import send_batcher
from .connection import Connection
from .sync import call

__all__ = [
    "Sent",
    "call",
    "mark_delivered",
    "mark_read",
    "presence_fetch",
    "presence_set",
    "send",
    "sync",
    "reauthenticate",
    "room_presence",
    "self_conversation_id",
    "typing",
]

TYPING_ACCESS_SECONDS = 5.0  # how long a connection reuses a typing membership check
TYPING_STATE_MAX = 64  # conversations whose typing state one connection keeps


@dataclass(slots=True)
class Sent:
    """A stored message (or the original one, for a retried client message id)."""

    message: Message
    created: bool


async def send(
    conn: Connection,
    *,
    conversation_id: object,
    content: object,
    client_message_id: object = None,
    kind: str | None = None,
    reply_to: object = None,
    message_kind: object = None,
    attachment_id: object = None,
) -> Sent:
    """Send a message into a conversation of the connection's user, batched with the sends of
    every other connection of this process (one transaction per batch). `kind` restricts the
    conversation kind (not found otherwise). Raises ApplicationError when refused. The time
    from here to the result (the ack follows at once) is recorded as send-to-ack latency."""
    started = time.monotonic()
    queued = send_batcher.enqueue(
        SendRequest(
            conn.user,
            conversation_id,
            content,
            client_message_id,
            kind,
            reply_to=reply_to,
            message_kind=message_kind,
            attachment_id=attachment_id,
            origin=conn.id,
        )
    )
    lanes.parked()  # a pipelined send's reader reads the connection's next event meanwhile
    result = await queued
    metrics.send_ack_observed(conn.protocol, conn.transport, time.monotonic() - started)
    if result.error is not None:
        raise result.error
    return Sent(result.message, result.created)


async def self_conversation_id(conn: Connection) -> str:
    """The user's notes-to-self conversation (created on first use)."""
    conversation = await call(msg_services.self_conversation_ensure, user=conn.user)
    return conversation.public_id


async def mark_read(
    conn: Connection,
    *,
    conversation_id: object,
    up_to_seq: object = None,
    message_ids: object = None,
    last_message_id: object = None,
    kind: str | None = None,
) -> tuple[Conversation, int]:
    """Move the user's read pointer (messaging.services.conversation_mark_read)."""
    return await call(
        msg_services.conversation_mark_read,
        user=conn.user,
        conversation_id=conversation_id,
        up_to_seq=up_to_seq,
        message_ids=message_ids,
        last_message_id=last_message_id,
        kind=kind,
    )


async def mark_delivered(
    conn: Connection, *, conversation_id: object, up_to_seq: object = None
) -> tuple[Conversation, int]:
    """Record what reached this device (messaging.services.conversation_mark_delivered)."""
    return await call(
        msg_services.conversation_mark_delivered,
        user=conn.user,
        conversation_id=conversation_id,
        up_to_seq=up_to_seq,
    )


async def _typing_target(conn: Connection, conversation_id: str) -> msg_selectors.TypingTarget:
    """The membership check of a typing event, reused for a few seconds: typing arrives every
    second or so while someone types, and must stay cheap. A member removed from a group may
    still relay typing for up to TYPING_ACCESS_SECONDS."""
    cache = conn.typing.access
    now = time.monotonic()
    hit = cache.get(conversation_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    target = await call(
        msg_selectors.conversation_typing_target, user=conn.user, conversation_id=conversation_id
    )
    if len(cache) >= TYPING_STATE_MAX:
        cache.clear()
    cache[conversation_id] = (now + TYPING_ACCESS_SECONDS, target)
    return target


def _seconds(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


async def _typing_publish(conn: Connection, target: msg_selectors.TypingTarget, *, started: bool) -> None:
    event = msg_events.typing(
        conversation_id=target.conversation_id,
        kind=target.kind,
        user=conn.user,
        started=started,
        expires_in=_seconds(settings.CHAT["TYPING_TTL_SECONDS"]),
    )
    if target.kind == Conversation.Kind.GROUP:
        await publish_now(event, conversation_ids=[target.conversation_id])
    else:
        await publish_now(event, user_ids=target.peer_ids)


async def typing(conn: Connection, *, conversation_id: str, started: bool) -> bool:
    """The user started (or stopped) typing in a conversation they are in. Never stored.
    Returns whether it was relayed: at most one start per TYPING_MIN_INTERVAL_SECONDS per
    conversation from one connection, and a stop only while this connection's typing may still
    show, so repeats cost nothing."""
    target = await _typing_target(conn, conversation_id)
    state = conn.typing.relayed  # conversation id -> [last relayed start, still typing]
    now = time.monotonic()
    last = state.get(conversation_id)
    if not started:
        if last is None or not last[1] or now - last[0] >= settings.CHAT["TYPING_TTL_SECONDS"]:
            return False
        last[1] = False
        await _typing_publish(conn, target, started=False)
        return True
    if last is not None and now - last[0] < settings.CHAT["TYPING_MIN_INTERVAL_SECONDS"]:
        last[1] = True
        return False
    if len(state) >= TYPING_STATE_MAX:
        state.clear()
    state[conversation_id] = [now, True]
    await _typing_publish(conn, target, started=True)
    return True


async def room_presence(
    conn: Connection, *, conversation_id: str, entered: bool, online: list[str], name: str
) -> bool:
    """The user opened (or closed) a group conversation on this connection: its members hear it
    (protocols whose clients join rooms). Never stored; the membership check is typing's.
    Returns whether it was published (not for other kinds of conversation)."""
    target = await _typing_target(conn, conversation_id)
    if target.kind != Conversation.Kind.GROUP:
        return False
    event = msg_events.room_presence(
        conversation_id=target.conversation_id, user=conn.user, entered=entered, online=online, name=name
    )
    await publish_now(event, conversation_ids=[target.conversation_id])
    return True


async def presence_set(conn: Connection, state: str) -> None:
    """This device went to the foreground or the background."""
    if state not in presence.DEVICE_STATES:
        raise ApplicationError(
            ErrorCode.INVALID, 'State must be "foreground" or "background".', {"field": "State"}
        )
    await presence.tracker.set_state(conn, state)


async def presence_fetch(conn: Connection, user_ids: object) -> list[Any]:
    """Presence of the users sharing a chat with the caller (others are left out)."""
    return await call(presence.presence_list, viewer=conn.user, user_ids=user_ids)


async def sync(
    conn: Connection, *, positions: object, include_all: bool
) -> list[msg_selectors.ConversationChanges]:
    """What changed in the caller's conversations since the given positions (by Rev)."""
    return await call(
        msg_selectors.conversation_changes, user=conn.user, positions=positions, include_all=include_all
    )


async def reauthenticate(conn: Connection, token: object) -> int:
    """In-band token refresh: a new access token of the same user extends the connection.
    Returns the new expiry (unix seconds)."""
    claims = access_decode(token if isinstance(token, str) else None)
    user = await call(user_for_claims, claims=claims)
    if user.public_id != conn.user_id:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "The token belongs to another user.")
    if claims.sid != conn.session_id:
        conn.refresh_token = None  # it belongs to the old session and could not renew this one
    conn.user, conn.session_id, conn.expires_at = user, claims.sid, claims.expires_at
    conn.expiry_changed()
    return claims.expires_at
