"""The CHAT SERVER wire protocol (seed 003, chat.callsewa.com) over the core and the tenants
model (docs/protocols/chatserver.md).

- Socket.IO 4 on namespace "/", `?token=<registered token>` in the handshake query; refusals are
  CONNECT_ERROR `No token key found` / `token key mismatch`;
- `handlers`: join, leave, typing, seen, send_message, load_more, update, delete;
- `render`: message, delete, is_typing, seen_by (pure), scoped to the rooms a socket joined;
- `wire`: the JSON shapes and the original's strings, pure;
- `rest`, `urls`: the original's /user and /room endpoints, behind the app's secret;
- `state`: the rooms a connection joined.

Rooms are tenants.models.AppRoom (a group conversation named within the app).
"""

from typing import Any

from chatproject.core.errors import ApplicationError, ErrorCode
from gateway.audience import Emit
from gateway.auth import Credentials
from gateway.connection import Connection
from gateway.protocol import Answer, EventsOnly, Refusal
from gateway.transports.handshake import Handshake

from .handlers import HANDLERS, announce_leave
from .render import render
from .state import ChatServerState
from .wire import ERR, NO_TOKEN, TOKEN_MISMATCH

__all__ = ["PROTOCOL", "ChatServer"]

# Refused events that the original ignored silently (it had no handler for unknown events).
SILENT = {ErrorCode.RATE_LIMITED}
UNKNOWN_EVENT = "Unknown event."


class ChatServer(EventsOnly):
    name = "chatserver"
    # Clients get connect_error with the original texts: decide before CONNECT.
    connect_first = False
    handlers = HANDLERS
    urls = "gateway.protocols.chatserver.urls"

    def credentials(self, handshake: Handshake) -> Credentials:
        """Only the query's `token`, as the original (the Socket.IO 4 `auth` payload is not
        read)."""
        token = handshake.query.get("token") or None
        return Credentials(token, None, renewable=False)

    def new_state(self, handshake: Handshake) -> ChatServerState:
        return ChatServerState()

    def refusal(self, error: ApplicationError) -> Refusal:
        text = NO_TOKEN if error.code == ErrorCode.NOT_AUTHENTICATED else TOKEN_MISMATCH
        return Refusal(connect_error=text)

    def answer_error(self, conn: Connection | None, event: str, error: ApplicationError) -> Answer:
        if conn is None or error.code in SILENT or error.message == UNKNOWN_EVENT:
            return Answer()
        return Answer([(ERR, error.message)], None)

    async def goodbye(self, conn: Connection) -> None:
        """A socket that ended without `leave` is announced to each room it had joined, like a
        leave (the original never told the room)."""
        state = conn.state
        if not isinstance(state, ChatServerState):
            return
        joined, state.rooms, state.current = dict(state.rooms), {}, None
        for conversation_id, name in joined.items():
            await announce_leave(conn, conversation_id=conversation_id, name=name)

    def render(self, event: dict[str, Any]) -> list[Emit]:
        return render(event)

    def in_scope(self, conn: Connection, scope: str) -> bool:
        state = conn.state
        return isinstance(state, ChatServerState) and scope in state.rooms


PROTOCOL = ChatServer()
