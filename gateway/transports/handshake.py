"""What a transport hands the hub when a socket asks to join a namespace, and the hub's answer.

Shared by every transport (Socket.IO 2 today); plain data, no behaviour.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Handshake:
    """The request that opened a namespace socket.

    `auth` is None for Socket.IO 2 clients (their credentials travel in `query`). `query` is the
    Engine.IO request's query, overridden key by key by the namespace CONNECT packet's own query
    (`0/nsp?token=..`). `headers` has lower-case names.
    """

    auth: object
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    transport: str = ""
    remote: str | None = None


@dataclass(frozen=True)
class Admission:
    """The hub's answer to a namespace CONNECT. A refused socket is told `error` (JSON-ready)."""

    accepted: bool
    error: object = None
