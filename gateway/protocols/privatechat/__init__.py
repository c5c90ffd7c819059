"""The private chat protocol of seed 001 (tyogautomo's React Native friends-and-chats app),
served unchanged to its clients and made safe (docs/protocols/privatechat.md).

- Socket.IO 4 on namespace "/" at /socket.io/, on its own host name or port (registry); the app
  sends no credentials at the handshake, so the socket is admitted unbound and bound to the user
  of the first id handle it sends in a "self" position (`binds_late`, `claim`);
- `handlers`: the 14 client events, positional arguments, same-name replies, no acks, every
  refusal silent;
- `render`: `send message`, `read messages`, `notify typing`, `get online info`, `add friend`
  from the core's events (`prepare` reads the room they need);
- `wire`: the JSON shapes; `selectors`: the rooms (direct conversations) and their messages;
- `rest`, `urls`: `POST /user`, `POST /user/signin`, `GET /user/search`, `GET /user/:id`.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.actions import call
from gateway.audience import Emit
from gateway.auth import Credentials
from gateway.protocol import EventsOnly
from gateway.transports.handshake import Handshake

from . import selectors, wire
from .handlers import HANDLERS, self_argument
from .render import PREPARED, render
from .state import PrivateChatState

__all__ = ["PROTOCOL", "PrivateChat"]

NOTHING = Credentials(None, None, renewable=False)
PREPARED_KEPT = 256  # rooms read for recent events, shared by their recipients on this process
PREPARED_SECONDS = 2.0


class PrivateChat(EventsOnly):
    """Same-name emits, never an ack; the app has no error channel, so a refused event is ignored."""

    name = "privatechat"
    connect_first = False
    binds_late = True
    handlers = HANDLERS
    urls = "gateway.protocols.privatechat.urls"

    def __init__(self) -> None:
        # One read per event and process, however many local recipients (each participant's
        # copy of the event arrives on its own): the last event of each kind and conversation,
        # (type, conversation) -> (its message id or (reader, seq), until, prepared). Only the
        # latest is kept, so a read receipt repeated after another one is read again, never
        # answered from a room whose read state has changed since.
        self._prepared: dict[tuple[str, str], tuple[Any, float, dict[str, Any]]] = {}

    def credentials(self, handshake: Handshake) -> Credentials:
        """Nothing: the app connects with `io(url)` and no options."""
        return NOTHING

    def claim(self, event: str, args: list[Any]) -> Credentials | None:
        """The id handle in the event's self position (a public id there binds nothing: the
        resolver knows no handle of that value)."""
        handle = self_argument(event, args)
        return Credentials(None, None, renewable=False, handle=handle) if handle else None

    def new_state(self, handshake: Handshake) -> PrivateChatState:
        return PrivateChatState()

    async def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        """Add the room (update form) a message or a read receipt of a direct chat needs, and the
        message, or the room's messages."""
        kind = event.get("type")
        conversation = event.get("conversation") or {}
        if kind not in ("message.created", "conversation.read") or conversation.get("kind") != "direct":
            return event
        position = (event.get("message") or {}).get("id") or (event.get("actor"), event.get("seq"))
        key = (kind, conversation["id"])
        now = time.monotonic()
        kept = self._prepared.get(key)
        if kept is not None and kept[0] == position and kept[1] > now:
            return {**event, PREPARED: kept[2]}
        room = await call(selectors.room_by_id, conversation_id=conversation["id"])
        if room is None or len(room.participants) != 2:  # the app needs the other participant
            return event
        prepared: dict[str, Any] = {"room": wire.room(room)}
        if kind == "message.created":
            prepared["message"] = _message(event["message"], room)
        else:
            lines = await call(selectors.room_lines, conversation_id=conversation["id"])
            prepared["messages"] = [wire.message(line) for line in lines]
        if len(self._prepared) >= PREPARED_KEPT:
            self._prepared.clear()
        self._prepared[key] = (position, now + PREPARED_SECONDS, prepared)
        return {**event, PREPARED: prepared}

    def render(self, event: dict[str, Any]) -> list[Emit]:
        return render(event)


def _message(payload: dict[str, Any], room: selectors.Room) -> dict[str, Any]:
    """The new message in the wire's form, from the event (the room gives the recipient)."""
    sender_id = payload.get("sender_id") or ""
    recipient = next((p.id for p in room.participants if p.id != sender_id), "")
    sender = selectors.Party(sender_id, payload.get("sender_name") or "")
    created = payload.get("created_at")
    return {
        "_id": payload["id"],
        "sender": wire.user_ref(sender),
        "recipient": recipient,
        "room": room.id,
        "message": payload.get("content") or "",
        "read": False,
        "createdAt": created,
        "updatedAt": created,
    }


PROTOCOL = PrivateChat()
