"""The hub as the Socket.IO 2 transport sees it: one hub per namespace."""

from typing import Protocol

from gateway.transports.handshake import Admission, Handshake


class HubPort(Protocol):
    async def connect(self, conn_id: str, handshake: Handshake) -> Admission:
        """Called when a socket asks to join the namespace; refused sockets are never registered."""

    async def greet(self, conn_id: str) -> None:
        """Called right after an accepted socket's CONNECT is queued, before its next packet."""

    async def handle(self, conn_id: str, event: str, args: list, *, oversize: bool = False) -> list | None:
        """Called for every EVENT, in order per client; a list answers the client's ack."""

    async def forget(self, conn_id: str) -> None:
        """Called once when an accepted socket ends, for any reason."""
