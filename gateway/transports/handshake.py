"""What a transport hands the hub when a client opens a connection, and what it gets back."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Handshake:
    """A client's opening request, as every transport sees it."""

    auth: object  # the Socket.IO CONNECT payload (Engine.IO 4 clients); None elsewhere
    headers: dict[str, str]  # lower-case names
    # The request's query, overridden by a Socket.IO 2 namespace CONNECT packet's own query.
    query: dict[str, str] = field(default_factory=dict)
    transport: str = ""  # "eio4" | "eio3" | "ws"
    remote: str | None = None
    # The Socket.IO namespace asked for ("" on /ws/): one protocol mounted on several namespaces
    # (seed 002's /customer and /artisans) tells them apart by it.
    namespace: str = ""


@dataclass(frozen=True)
class Admission:
    """The hub's decision on a handshake. Refused (`accepted` False): the transport answers the
    namespace CONNECT with `error` and registers nothing. Accepted: it answers CONNECT, then
    calls `hub.greet(conn_id)` before handling any further packet of that client."""

    accepted: bool
    error: object = None
