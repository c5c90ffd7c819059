"""The ExpressChat wire protocol (Socket.IO namespace "/" and the /ws/ consumer), over the core.

- `handlers`: inbound, one handler per client event;
- `render`: outbound, a domain event -> ExpressChat events with their audience (pure);
- `wire`: the JSON shapes, pure;
- `rest`, `urls`: the original's REST endpoints (/signup, /login, /verify, ...);
- `state`: what a connection keeps, and the extensions opt-in.

Compatible extensions (ignored by the original client): an ack on every event
(`{"ok": true, "data": ...}` / `{"ok": false, "error": {...}}`), `ClientMessageId` on sends,
`Id`/`Seq`/`Timestamp`/`SenderId` on delivered messages, `Before`/`Limit` on fetches, receipts,
unread, typing and presence (docs/protocol.md §11), edits, deletes, replies and reactions
(§13), resync with `Rev` (§14), media (§15), and group system messages for clients that opt in
(§16).
"""

from typing import Any

from chatproject.core.errors import ApplicationError
from gateway.audience import ACTOR, ALL, SUBJECT, Emit
from gateway.auth import Credentials, first_party_credentials
from gateway.connection import Connection
from gateway.protocol import Answer, Outcome, Protocol, Refusal
from gateway.transports.handshake import Handshake
from messaging.selectors import ConversationSnapshot

from .handlers import HANDLERS
from .render import render
from .state import EXTENSIONS, ExpressChatState
from .wire import (
    AUTH_FAILURE,
    auth_failure_payload,
    error_payload,
    greeting,
    group_chat_payload,
    group_message,
    personal_message,
    self_message,
    sync_payload,
)

__all__ = [
    "ACTOR",
    "ALL",
    "PROTOCOL",
    "SUBJECT",
    "Emit",
    "ExpressChat",
    "group_chat_payload",
    "group_message",
    "personal_message",
    "render",
    "self_message",
    "sync_payload",
]

ERROR_EVENT = "error"
ACCESS_TOKEN_EVENT = "access-token"
RESYNC_EVENT = "resync"  # extension: live events may have been lost; call `sync` (§14.6)
TRUE_VALUES = ("1", "true", "yes")


def ack_ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def ack_error(error: ApplicationError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": str(error.code), "message": error.message, "extra": error.extra}}


class ExpressChat(Protocol):
    name = "expresschat"
    # The original page expects connect, then `auth-failure`, then a server disconnect.
    connect_first = True
    handlers = HANDLERS
    # The three sends: checked, `actions.send`, answered with its ack (gateway/lanes.py).
    pipelined = frozenset({"send-personal-message", "send-group-message", "send-self-message"})
    urls = "gateway.protocols.expresschat.urls"
    optional_capabilities = (EXTENSIONS,)

    def credentials(self, handshake: Handshake) -> Credentials:
        return first_party_credentials(handshake)

    def new_state(self, handshake: Handshake) -> ExpressChatState:
        return ExpressChatState()

    def capabilities(self, handshake: Handshake) -> frozenset[str]:
        auth = handshake.auth if isinstance(handshake.auth, dict) else {}
        opted = auth.get("extensions") is True or handshake.query.get("extensions", "").lower() in TRUE_VALUES
        return frozenset({EXTENSIONS}) if opted else frozenset()

    def refusal(self, error: ApplicationError) -> Refusal:
        return Refusal([(AUTH_FAILURE, auth_failure_payload(str(error.code)))])

    def greeting(self, conn: Connection, snapshot: ConversationSnapshot) -> list[tuple[str, Any]]:
        return greeting(conn, snapshot.summaries)

    def resync(self, conn: Connection) -> list[tuple[str, Any]]:
        return [(RESYNC_EVENT, {"Reason": "bus"})]

    def token_renewed(self, conn: Connection, access: str) -> list[tuple[str, Any]]:
        return [(ACCESS_TOKEN_EVENT, {"accessToken": access})]

    def answer(self, conn: Connection, event: str, outcome: Outcome) -> Answer:
        if outcome.error is not None:  # refused with the protocol's own failure event
            return Answer(outcome.emits, [ack_error(outcome.error)])
        return Answer(outcome.emits, [ack_ok(outcome.data)])

    def answer_error(self, conn: Connection | None, event: str, error: ApplicationError) -> Answer:
        if conn is None:  # the connection ended while the event was in flight: the ack says so
            return Answer([], [ack_error(error)])
        return Answer([(ERROR_EVENT, error_payload(error, event))], [ack_error(error)])

    def render(self, event: dict[str, Any]) -> list[Emit]:
        return render(event)


PROTOCOL = ExpressChat()
