"""The hub's seam to a transport: six methods, each a thin shell over the transport's own
machinery (python-socketio rooms, the /ws/ consumer registry, the Socket.IO 2 server)."""

from typing import Any, Protocol


class Transport(Protocol):
    name: str  # "eio4" | "eio3" | "ws": a label for logs and metrics

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        """Send one event to one connection."""

    async def fanout(
        self, target: str, name: str, payload: Any, *, only: frozenset[str] | None, skip: frozenset[str]
    ) -> int:
        """Send one event to every local connection routed for bus group `target`, restricted
        to `only` when given, minus `skip`; encoded once. Returns how many it was sent to."""

    async def close(self, conn_id: str, *, reconnect: bool = False) -> None:
        """End one connection from the server side. `reconnect` (graceful drain): end it the way
        its clients reconnect from (the transport under it goes away, what is queued first),
        instead of the protocol-level disconnect that tells a client to stay away."""

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        """Put a connection into local routing for these bus groups."""

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        """Take a connection out of local routing for these bus groups."""

    def is_open(self, conn_id: str) -> bool:
        """Whether the connection is still there."""
