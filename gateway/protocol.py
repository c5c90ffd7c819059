"""What a wire protocol is, to the hub: the plug-in interface of `gateway/protocols/<name>/`.

A protocol translates and does nothing else. It reads credentials from a handshake, says how a
refusal looks on its wire, greets a new connection, maps each client event to the gateway's
actions and services (a handler per event name, getting every argument of the event), says how
an answer goes back (ack, same-name emit, nothing), and renders domain events from the bus into
its own events with their audience (`render`, a pure function). The hub owns everything else:
connection life, rate limits, routing, expiry, revocation.

A protocol package exposes one module-level `PROTOCOL` object (an instance of a `Protocol`
subclass); the registry (`gateway/registry.py`, settings `CHAT["PROTOCOLS"]`) mounts it on a
transport. Nothing in the hub, the transports or the core imports a protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from chatproject.core.errors import ApplicationError

from .audience import Emit
from .transports.handshake import Handshake

if TYPE_CHECKING:
    from messaging.selectors import ConversationSnapshot

    from .auth import Credentials
    from .connection import Connection


@dataclass
class Outcome:
    """What a handler produced: events to the calling connection (sent before the answer), the
    answer's data, or the refusal when the protocol answered it with its own failure event."""

    emits: list[tuple[str, Any]] = field(default_factory=list)
    data: Any = None
    error: ApplicationError | None = None
    # Awaited by the hub once the answer's events went out: work whose bus events must reach
    # the caller after its answer (a room announcement after the join's own replies). Failures
    # are logged, never answered: the event has been answered already.
    after: Callable[[], Awaitable[None]] | None = None
    # End the connection after the answer (a server-side disconnect, no reconnect), as some
    # legacy protocols do when a client fails an in-band check.
    close: bool = False


@dataclass(frozen=True)
class Refusal:
    """How a refused handshake looks on the wire.

    `connect_error` set (a message, or a (message, data) tuple): the Socket.IO transports answer
    the namespace CONNECT with it (CONNECT_ERROR `{"message", "data"}` for Engine.IO 4 clients,
    ERROR with the message for Socket.IO 2 clients; a plain WebSocket is closed) and nothing
    else happens. Otherwise the connection is accepted, gets `emits`, and is closed (the ExpressChat
    way: connect, `auth-failure`, disconnect).
    """

    emits: list[tuple[str, Any]] = field(default_factory=list)
    connect_error: Any = None
    # Not the client's fault (the bus or the database is down, a connection cap): the hub
    # closes the transport so the client reconnects later, with no refusal a client could
    # take for bad credentials. Set by the hub, never by a protocol.
    retry: bool = False


@dataclass(slots=True)
class Answer:
    """What goes back for one client event: events first, then the ack arguments (None: the
    event's ack, if it asked for one, is not answered)."""

    emits: list[tuple[str, Any]] = field(default_factory=list)
    ack: list[Any] | None = None


Handler = Callable[["Connection", list[Any]], Awaitable[Outcome]]


class Protocol:
    """Base of every protocol. Subclasses set `name` and `handlers` and override what differs."""

    name: ClassVar[str] = ""
    # Socket.IO: send CONNECT before authenticating (refusals then come as events), or decide
    # first and answer a refusal with CONNECT_ERROR. Every mount of one Engine.IO server must
    # agree (python-socketio's `always_connect` is per server); the registry checks it.
    connect_first: ClassVar[bool] = False
    handlers: ClassVar[dict[str, Handler]] = {}
    # Capabilities a client may opt in to (see `capabilities`); emits that require one skip the
    # connections without it.
    optional_capabilities: ClassVar[tuple[str, ...]] = ()
    # Dotted path of the protocol's REST urls module, included at the site root, or None.
    urls: ClassVar[str | None] = None
    # Clients that present nothing at the handshake and name themselves in their events (seed
    # 001 sends an id handle as an event argument): the hub admits such a connection unbound,
    # drops its events until one carries credentials (`claim`) that resolve, and binds the
    # connection to that user for good (greeting it then, before handling that event). Unbound
    # connections are capped per client address and closed if still unbound after a while
    # (CHAT SOCKET_MAX_UNBOUND_PER_ADDRESS, SOCKET_UNBOUND_SECONDS).
    binds_late: ClassVar[bool] = False
    # Events that may run ahead of the connection's earlier ones while those wait for their
    # send batch (gateway/lanes.py): sends whose handler checks its payload, calls
    # `actions.send` once and answers with what it returns, and does nothing else the next
    # event could see. Effects and answers stay in the order the client sent them.
    pipelined: ClassVar[frozenset[str]] = frozenset()

    # --- connection start -------------------------------------------------------------------

    def credentials(self, handshake: Handshake) -> Credentials:
        """The credentials a client presented in its handshake."""
        raise NotImplementedError

    def new_state(self, handshake: Handshake) -> Any:
        """This protocol's per-connection state (a dataclass), made at the handshake."""
        return None

    def capabilities(self, handshake: Handshake) -> frozenset[str]:
        """What this client opted in to (emits with `requires` go only to connections that hold
        it). Nothing by default."""
        return frozenset()

    def refusal(self, error: ApplicationError) -> Refusal:
        """How a refused handshake, or a connection ended by revocation or expiry, is told."""
        return Refusal(connect_error=error.message)

    def greeting(self, conn: Connection, snapshot: ConversationSnapshot) -> list[tuple[str, Any]]:
        """The events a freshly authenticated connection receives."""
        return []

    async def welcome(self, conn: Connection) -> list[tuple[str, Any]]:
        """Events a freshly greeted connection receives that need a read of their own (a
        protocol's own data, presence): awaited right after `greeting`. Nothing by default."""
        return []

    def resync(self, conn: Connection) -> list[tuple[str, Any]]:
        """Events telling a client that live events may have been lost (the bus failed) and it
        should catch up from the database. Nothing by default."""
        return []

    def token_renewed(self, conn: Connection, access: str) -> list[tuple[str, Any]]:
        """Events telling a client its access token was renewed on the live connection."""
        return []

    async def goodbye(self, conn: Connection) -> None:
        """Called once when a greeted connection ended, for any reason (the client left, a
        revocation, a drain), after it stopped receiving: the protocol tells others what its wire
        says about it (a room's "has left"). Nothing by default; failures are logged and
        swallowed, so forgetting a connection always completes."""
        return None

    def draining(self, conn: Connection) -> list[tuple[str, Any]]:
        """The events a connection receives before the server drains it (graceful shutdown):
        the transport under it is then closed the way its clients reconnect from
        (`Transport.close(reconnect=True)`), so most protocols need nothing here."""
        return []

    def claim(self, event: str, args: list[Any]) -> Credentials | None:
        """The credentials an event of a connection not bound yet carries (`binds_late`), or
        None: the event is then dropped (answered like a refused event with no connection)."""
        return None

    # --- client events ----------------------------------------------------------------------

    def answer(self, conn: Connection, event: str, outcome: Outcome) -> Answer:
        """How a handled event is answered."""
        return Answer(outcome.emits, [outcome.data] if outcome.data is not None else None)

    def answer_error(self, conn: Connection | None, event: str, error: ApplicationError) -> Answer:
        """How a refused event (bad input, not allowed, rate limited, unknown, internal) is
        answered. `conn` is None when the connection has already ended."""
        return Answer()

    # --- bus events -------------------------------------------------------------------------

    async def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event `render` gets: a protocol whose wire names things the core's events do not
        carry (its own ids of a conversation, say) adds them here, from a cache or a read, so
        `render` stays a pure function of what it is given. The event itself by default."""
        return event

    def render(self, event: dict[str, Any]) -> list[Emit]:
        """The events a domain event becomes on this wire, each with its audience. Pure."""
        return []

    def in_scope(self, conn: Connection, scope: str) -> bool:
        """Whether a connection takes emits of this `Emit.scope` (its per-connection state
        decides: a room it joined...). Everything by default; called only for scoped emits."""
        return True


class EventsOnly(Protocol):
    """A protocol whose original server answered client events with events only: no
    acknowledgement, and nothing at all for a refused event (its clients expect no error, so a
    refusal is a silent drop)."""

    def answer(self, conn: Connection, event: str, outcome: Outcome) -> Answer:
        return Answer(outcome.emits, None)

    def answer_error(self, conn: Connection | None, event: str, error: ApplicationError) -> Answer:
        return Answer()
