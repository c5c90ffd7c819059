"""What the gateway knows about one live connection, and the per-connection rate limit."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import User

from .ratelimit import TokenBucket

__all__ = ["Connection", "TokenBucket", "TypingState"]


@dataclass(slots=True)
class TypingState:
    """Typing relays of one connection (gateway.actions): per conversation, when the last
    `typing` was relayed and whether the user may still show as typing; and membership checks
    reused for a few seconds (conversation id -> (valid until, target))."""

    relayed: dict[str, list] = field(default_factory=dict)
    access: dict[str, tuple[float, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class Connection:
    """One authenticated socket (a Socket.IO sid, a /ws/ consumer, a Socket.IO 2 socket).

    Slotted, and its typing state made on first use: a process holds one per connection, and
    most connections never type (bench idle scenario: KiB per idle connection)."""

    id: str
    user: User
    session_id: str  # the LoginSession sid the token belongs to
    expires_at: int  # access token expiry, unix seconds
    protocol: str  # the protocol's name
    transport: str  # "eio4" | "eio3" | "ws"
    refresh_token: str | None = None  # lets the server renew the access token on a live socket
    bucket: TokenBucket | None = None
    # Bus groups this connection is routed for (its user's, and its group conversations').
    groups: list[str] = field(default_factory=list)
    capabilities: frozenset[str] = frozenset()  # what the client opted in to (protocol-defined)
    typing_state: TypingState | None = None
    state: Any = None  # the protocol's own per-connection state (a dataclass of the protocol)
    # Set by the hub: reschedules the connection's expiry timer (`expiry_changed`). Given the
    # connection as its argument, so it need not hold it: a closure over the connection stored on
    # the connection was a reference cycle per connection, freed only by the cyclic collector.
    rescheduler: Callable[["Connection"], None] | None = None
    counted: bool = False  # greeted: counted as a live connection (metrics)
    realm: str | None = None  # the tenant app's public id; None: the first-party realm
    lane: Any = None  # its pipelined sends in flight (gateway.lanes.Lane), made on first use

    @property
    def user_id(self) -> str:
        return self.user.public_id

    def expiry_changed(self) -> None:
        """Called when `expires_at` moved (an in-band token refresh): the hub reschedules the
        connection's expiry."""
        if self.rescheduler is not None:
            self.rescheduler(self)

    @property
    def typing(self) -> TypingState:
        if self.typing_state is None:
            self.typing_state = TypingState()
        return self.typing_state
