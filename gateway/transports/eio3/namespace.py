"""The hub -> transport contract (the six methods) for one Socket.IO 2 namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import codec
from .ports import HubPort

if TYPE_CHECKING:
    from .session import Session


class Eio3Namespace:
    """Local sockets of one namespace and the local rooms they joined.

    `conn_id` is the socket id a socket.io 2 server would give: the Engine.IO sid for `/`,
    `<nsp>#<sid>` otherwise (the 2.x client computes the same as its `socket.id`).
    """

    def __init__(self, name: str, hub: HubPort):
        self.name = name
        self.hub = hub
        self._sockets: dict[str, Session] = {}
        self._rooms: dict[str, set[str]] = {}
        self._joined: dict[str, set[str]] = {}

    async def send(self, conn_id: str, name: str, payload: object) -> None:
        session = self._sockets.get(conn_id)
        if session is not None:
            session.deliver(codec.encode_event(self.name, name, [payload]))

    async def fanout(
        self,
        target: str,
        name: str,
        payload: object,
        *,
        only: set[str] | None = None,
        skip: set[str] = frozenset(),
    ) -> int:
        members = self._rooms.get(target)
        if not members:
            return 0
        packet = codec.encode_event(self.name, name, [payload])  # encoded once for everyone
        sent = 0
        for conn_id in list(members):
            if (only is not None and conn_id not in only) or conn_id in skip:
                continue
            session = self._sockets.get(conn_id)
            if session is not None:
                session.deliver(packet)
                sent += 1
        return sent

    async def close(self, conn_id: str, *, reconnect: bool = False) -> None:
        session = self._sockets.get(conn_id)
        if session is None:
            return
        if reconnect:
            # socket.io-client 2 reconnects after an Engine.IO close ("transport close"), not
            # after a namespace disconnect: end the whole session, what is queued first.
            session.close("server draining", flush=True)
        else:
            session.close_socket(self.name)

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        if conn_id not in self._sockets:
            return  # closed meanwhile: joining would leak a room entry nobody removes
        joined = self._joined.setdefault(conn_id, set())
        for group in groups:
            self._rooms.setdefault(group, set()).add(conn_id)
            joined.add(group)

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        joined = self._joined.get(conn_id, set())
        for group in groups:
            joined.discard(group)
            self._discard(group, conn_id)

    def is_open(self, conn_id: str) -> bool:
        return conn_id in self._sockets

    # --- called by the session -----------------------------------------------------------------

    def attach(self, conn_id: str, session: Session) -> None:
        self._sockets[conn_id] = session

    def detach(self, conn_id: str) -> None:
        self._sockets.pop(conn_id, None)
        for group in self._joined.pop(conn_id, ()):
            self._discard(group, conn_id)

    def _discard(self, group: str, conn_id: str) -> None:
        members = self._rooms.get(group)
        if members is not None:
            members.discard(conn_id)
            if not members:
                del self._rooms[group]

    def room_count(self) -> int:
        return len(self._rooms)
