"""The python-socketio AsyncServer (namespace "/", the ExpressChat protocol), built from settings.

Local routing uses python-socketio's own in-process rooms, named like the bus groups: a bus
event for group G is emitted once to room G, which encodes the packet once for every local
recipient. There is no python-socketio client manager on Redis: the channel layer is the bus.
"""

import logging
from typing import Any

import socketio
from django.conf import settings

from .auth import credentials_from_scope
from .hub import Hub

logger = logging.getLogger(__name__)
NAMESPACE = "/"


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    return {
        key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
    }


class SocketIOHub(Hub):
    transport = "socketio"

    def __init__(self, sio: socketio.AsyncServer) -> None:
        super().__init__()
        self.sio = sio

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        await self.sio.emit(name, payload, to=conn_id, namespace=NAMESPACE)

    async def fanout(
        self, target: str, name: str, payload: Any, *, only: set[str] | None, skip: set[str]
    ) -> None:
        if only is not None:
            recipients = [sid for sid in only if target in self.sio.rooms(sid, namespace=NAMESPACE)]
            if recipients:
                await self.sio.emit(name, payload, to=recipients, namespace=NAMESPACE)
            return
        await self.sio.emit(name, payload, room=target, skip_sid=list(skip) or None, namespace=NAMESPACE)

    async def close(self, conn_id: str) -> None:
        await self.sio.disconnect(conn_id, namespace=NAMESPACE)

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            await self.sio.enter_room(conn_id, group, namespace=NAMESPACE)

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            await self.sio.leave_room(conn_id, group, namespace=NAMESPACE)

    def is_open(self, conn_id: str) -> bool:
        return self.sio.manager.is_connected(conn_id, NAMESPACE)


def build_server() -> tuple[socketio.AsyncServer, SocketIOHub]:
    chat = settings.CHAT
    origins = chat["SOCKET_CORS_ALLOWED_ORIGINS"] or None  # None: same origin only
    sio = socketio.AsyncServer(
        async_mode="asgi",
        always_connect=True,  # refused clients see connect -> auth-failure -> disconnect
        async_handlers=False,  # one client's events are handled in the order they were sent
        cors_allowed_origins=origins,
        cors_credentials=True,
        ping_interval=chat["SOCKET_PING_INTERVAL"],
        ping_timeout=chat["SOCKET_PING_TIMEOUT"],
        max_http_buffer_size=chat["SOCKET_MAX_PAYLOAD_BYTES"],
        logger=False,
        engineio_logger=False,
    )
    hub = SocketIOHub(sio)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Called when a client opens namespace "/": authenticate and greet it."""
        credentials = credentials_from_scope(
            auth=auth, headers=_headers(environ), query_string=environ.get("QUERY_STRING", "")
        )
        await hub.open(sid, credentials)

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        """Called when a client's connection ended."""
        await hub.forget(sid)

    @sio.on("*")
    async def any_event(event: str, sid: str, *args: Any) -> dict[str, Any] | None:
        """Called for every client event; the protocol module decides what it means."""
        return await hub.handle(sid, event, args[0] if args else None)

    return sio, hub
