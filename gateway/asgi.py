"""The ASGI application: every mount of the protocol registry on its transport, Django for
everything else.

Each Socket.IO site (transport, Engine.IO path, host, port) is one python-socketio server with a
namespace per mounted protocol; each /ws/ mount is a Channels consumer; every mount gets its own
hub (gateway.hub.Hub) with its protocol and its transport. A request goes to the first mount
whose path, host and port it matches, else to Django.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import time
from collections import defaultdict, deque
from typing import Any

import socketio
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chatproject.bus import transport as bus
from chatproject.core.body_limit import BodyLimit
from chatproject.core.errors import ErrorCode
from chatproject.ops import metrics

from . import drain as graceful
from .auth import query_dict
from .bridge import bridge
from .hub import BUSY, DRAINING, Hub
from .presence import tracker
from .registry import Mount, mounts, protocol
from .transports import safe_json
from .transports.eio3.server import Eio3Server
from .transports.socketio import GatewayServer, SocketIOTransport
from .transports.ws import ChatConsumer, WsTransport

logger = logging.getLogger(__name__)

ASGIApp = Any


def _socketio_site(site_mounts: list[Mount]) -> tuple[ASGIApp, list[Hub]]:
    """One python-socketio server for the mounts that share a transport, path, host and port."""
    chat = settings.CHAT
    protocols = [protocol(m.protocol) for m in site_mounts]
    connect_first = {p.connect_first for p in protocols}
    if len(connect_first) > 1:
        names = ", ".join(p.name for p in protocols)
        raise ImproperlyConfigured(
            f"{names} share {site_mounts[0].path} but refuse connections differently "
            "(connect_first): give one of them its own path, host or port."
        )
    first = site_mounts[0]
    sio = GatewayServer(
        event_limit=chat["SOCKET_MAX_PAYLOAD_BYTES"],
        max_attachments=chat["SOCKET_MAX_ATTACHMENTS"],
        connect_timeout=chat["SOCKET_CONNECT_TIMEOUT_SECONDS"],
        packet_rate=(2 * chat["SOCKET_RATE_BURST"], 2 * chat["SOCKET_RATE_PER_SECOND"]),
        async_mode="asgi",
        json=safe_json,
        always_connect=connect_first.pop(),
        async_handlers=False,  # one client's events are handled in the order they were sent
        cors_allowed_origins=chat["SOCKET_CORS_ALLOWED_ORIGINS"] or None,  # None: same origin
        cors_credentials=True,
        ping_interval=first.ping_interval or chat["SOCKET_PING_INTERVAL"],
        ping_timeout=first.ping_timeout or chat["SOCKET_PING_TIMEOUT"],
        max_http_buffer_size=chat["SOCKET_TRANSPORT_MAX_BYTES"],
        logger=False,
        engineio_logger=False,
    )
    hubs = []
    for mount, proto in zip(site_mounts, protocols, strict=True):
        transport = SocketIOTransport(sio, mount.namespace)
        hub = Hub(proto, transport, mount.policy)
        transport.bind(hub)
        hubs.append(hub)
    return socketio.ASGIApp(sio, socketio_path=first.path.strip("/")), hubs


def _engineio_frame(text: str) -> bool:
    """Whether python-engineio can decode a WebSocket text frame: a packet type digit, or `b`
    and base64. It decodes outside its own error handling, so anything else would end the
    request with an exception (a traceback, and a session left half open)."""
    if not text:
        return False
    if text[0] in "0123456789":
        return True
    if text[0] != "b":
        return False
    try:
        base64.b64decode(text[1:])
    except ValueError:
        return False
    return True


def _engineio_frames_only(receive):
    """Turn a text frame python-engineio cannot decode into the end of the WebSocket (1002,
    protocol error): the session ends cleanly, as for any other protocol error."""

    async def guarded() -> dict[str, Any]:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None and not _engineio_frame(text):
                logger.info("undecodable engine.io frame: session closed")
                return {"type": "websocket.disconnect", "code": 1002}
        return message

    return guarded


class _Labelled:
    """A transport under the label the hub records for its connections ("eio3")."""

    def __init__(self, inner: Any, name: str) -> None:
        self._inner, self.name = inner, name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


def _site_ping(site_mounts: list[Mount], key: str, default: float) -> float:
    """A heartbeat setting of the mounts that share one Engine.IO server: the one any of them
    sets (they must agree: one server has one heartbeat), else the default."""
    values = {getattr(m, key) for m in site_mounts if getattr(m, key) is not None}
    if len(values) > 1:
        names = ", ".join(f"{m.protocol} {m.namespace}" for m in site_mounts)
        raise ImproperlyConfigured(f"{names} share {site_mounts[0].path} but set different {key} values.")
    return values.pop() if values else default


def _eio3_site(site_mounts: list[Mount]) -> tuple[Eio3Server, list[Hub]]:
    """One Socket.IO 2 (Engine.IO 3) server for the mounts that share a path, host and port."""
    chat = settings.CHAT
    first = site_mounts[0]
    server = Eio3Server(
        first.path,
        ping_interval=_site_ping(site_mounts, "ping_interval", chat["SOCKET_PING_INTERVAL"]),
        ping_timeout=_site_ping(site_mounts, "ping_timeout", chat["SOCKET_PING_TIMEOUT"]),
        max_payload=chat["SOCKET_TRANSPORT_MAX_BYTES"],
        event_limit=chat["SOCKET_MAX_PAYLOAD_BYTES"],
        max_attachments=chat["SOCKET_MAX_ATTACHMENTS"],
        packet_rate=(2 * chat["SOCKET_RATE_BURST"], 2 * chat["SOCKET_RATE_PER_SECOND"]),
        connect_timeout=chat["SOCKET_CONNECT_TIMEOUT_SECONDS"],
        cors_allowed_origins=chat["SOCKET_CORS_ALLOWED_ORIGINS"] or None,
    )
    hubs = []
    for mount in site_mounts:
        hub = Hub(protocol(mount.protocol), None, mount.policy)  # the namespace needs the hub, and vice versa
        hub.transport = _Labelled(server.mount(mount.namespace, hub), "eio3")
        hubs.append(hub)
    return server, hubs


def _ws_mount(mount: Mount) -> tuple[ASGIApp, Hub]:
    hub = Hub(protocol(mount.protocol), WsTransport(), mount.policy)
    return ChatConsumer.as_asgi(hub=hub), hub


class Gateway:
    def __init__(self, django_application: ASGIApp) -> None:
        self.routes: list[tuple[Mount, ASGIApp]] = []
        self.hubs: list[Hub] = []
        self.eio3_servers: list[Eio3Server] = []
        self.engineio4_apps: set[ASGIApp] = set()
        self.engineio4_servers: dict[int, Any] = {}  # id(app) -> its python-socketio server
        self.draining = False
        self.admitted: deque[float] = deque()  # when new sessions were let in (last second)
        self.labels: dict[int, tuple[str, str]] = {}  # id(app) -> (protocol, transport) of its first mount
        sites: dict[tuple, list[Mount]] = defaultdict(list)
        for mount in mounts():
            sites[mount.site].append(mount)
        for site_mounts in sites.values():
            first = site_mounts[0]
            if first.transport == "eio4":
                app, hubs = _socketio_site(site_mounts)
                self.hubs += hubs
                self.engineio4_apps.add(app)
                self.engineio4_servers[id(app)] = app.engineio_server
                self.routes.append((first, app))
            elif first.transport == "eio3":
                server, hubs = _eio3_site(site_mounts)
                self.hubs += hubs
                self.eio3_servers.append(server)
                self.routes.insert(0, (first, server))  # before Engine.IO 4 on the same path
            elif first.transport == "ws":
                if len(site_mounts) > 1:
                    raise ImproperlyConfigured(f"Two /ws/ mounts on {first.path}: one protocol per path.")
                app, hub = _ws_mount(first)
                self.hubs.append(hub)
                self.routes.append((first, app))
        # A mount for one host name or port is tried before the mounts for every host (which
        # would take its requests); Socket.IO 2 mounts stay first (they take only EIO=3).
        self.routes.sort(key=lambda r: (r[0].transport != "eio3", r[0].host is None and r[0].port is None))
        for mount, app in self.routes:
            self.labels[id(app)] = (protocol(mount.protocol).name, mount.transport)
        self.django = BodyLimit(django_application)

    def route(self, scope: dict[str, Any]) -> ASGIApp:
        path = scope.get("path", "")
        for mount, app in self.routes:
            if mount.transport == "ws":
                matches = path in (mount.path, mount.path.rstrip("/"))
            elif mount.transport == "eio3":  # by Engine.IO version (or one of its session ids)
                matches = app.wants(scope)
            else:
                matches = path.startswith(mount.path) or path == mount.path.rstrip("/")
            if matches and mount.serves(scope):
                return app
        return self.django

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self.route(scope)
        if app is not self.django and _opens_session(scope, self.labels[id(app)][1]):
            if self.draining:
                await self._refuse_draining(scope, receive, send, app)
                return
            if self._handshakes_full():
                await self._refuse_draining(scope, receive, send, app, busy=True)
                return
        if scope["type"] == "websocket" and app in self.engineio4_apps:
            receive = _engineio_frames_only(receive)
        elif (
            scope["type"] == "http"
            and app in self.engineio4_apps
            and await self._poll_too_large(scope, send, app)
        ):
            return
        await app(scope, receive, send)

    async def _poll_too_large(self, scope: dict[str, Any], send, app: ASGIApp) -> bool:
        """A long-polling POST over the Engine.IO ceiling: answered 413 at once, and its session
        closed without waiting. (python-engineio refuses it too, but closes the session by
        queueing a CLOSE packet and waiting for a poll to take it: the POST got no answer until
        the ping timeout, and such requests held up a graceful shutdown.)"""
        if scope.get("method") != "POST":
            return False
        length = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        try:
            too_large = int(length) > settings.CHAT["SOCKET_TRANSPORT_MAX_BYTES"]
        except ValueError:
            too_large = True
        if not too_large:
            return False
        sid = query_dict(scope.get("query_string", b"").decode("latin-1")).get("sid", "")
        socket = self.engineio4_servers[id(app)].eio.sockets.get(sid)
        if socket is not None and not socket.closed:
            await socket.close(wait=False, abort=True)
        body = json.dumps(
            {"code": str(ErrorCode.PAYLOAD_TOO_LARGE), "message": "Request body too large."}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    def _handshakes_full(self) -> bool:
        """CHAT HANDSHAKES_MAX_IN_FLIGHT handshakes are being authenticated and greeted already.
        In a reconnect storm, handshakes past what the process can finish before the clients'
        connect timeout (20 s for socket.io clients) are wasted: the client gives up and
        retries, and the process does the work again (bench scenario 8: 26 ms of server CPU per
        reconnect with 10,000 clients, 7 ms with 1,000). Refused here, they cost next to
        nothing and the client retries after its backoff. 0: no limit.

        A hub counts a handshake from the client's namespace connect; sessions admitted in the
        last second count too, so a burst of new sessions cannot all pass before any reaches a
        hub (a session is briefly counted twice: the limit errs on the safe side)."""
        limit = settings.CHAT["HANDSHAKES_MAX_IN_FLIGHT"]
        if limit <= 0:
            return False
        now = time.monotonic()
        while self.admitted and now - self.admitted[0] > 1.0:
            self.admitted.popleft()
        if len(self.admitted) + sum(len(hub.started) for hub in self.hubs) >= limit:
            return True
        self.admitted.append(now)
        return False

    async def _refuse_draining(
        self, scope: dict[str, Any], receive, send, app: ASGIApp, *, busy: bool = False
    ) -> None:
        """A new connection while draining (or, `busy`, while too many handshakes are in
        progress): refused before any protocol sees it, in the way each client takes as "try
        again" (socket.io clients reconnect after a failed handshake)."""
        protocol_name, transport = self.labels.get(id(app), ("", ""))
        error = BUSY if busy else DRAINING
        metrics.connect_refused(protocol_name, transport, str(error.code))
        body = json.dumps({"code": str(error.code), "message": error.message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"retry-after", b"1"),
        ]
        prefix = "http"
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            if "websocket.http.response" not in scope.get("extensions", {}):
                # Closed before accept: the server answers the upgrade request with HTTP 403.
                await send({"type": "websocket.close", "code": 1013})
                return
            prefix = "websocket.http"  # uvicorn: the upgrade request is answered with this 503
        else:
            headers.append((b"connection", b"close"))
        await send({"type": f"{prefix}.response.start", "status": 503, "headers": headers})
        await send({"type": f"{prefix}.response.body", "body": body})

    async def drain(self) -> dict[str, Any]:
        """The graceful drain (gateway/drain.py): refuse new connections, then drain the hubs."""
        self.draining = True
        return await graceful.drain(self.hubs, float(settings.CHAT["DRAIN_SECONDS"]))

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await startup()
                    graceful.install(self.drain)
                except Exception as exc:
                    logger.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for server in self.eio3_servers:
                    await server.close_all()
                await shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _opens_session(scope: dict[str, Any], transport: str) -> bool:
    """Whether a request for a gateway mount opens a new connection: any /ws/ connection, an
    Engine.IO request without a session id (polls, posts and upgrades of open sessions go on)."""
    if transport == "ws":
        return True
    return not any(part.startswith(b"sid=") for part in scope.get("query_string", b"").split(b"&"))


def collector_tuned() -> None:
    """Called once the application is built, before it serves: what start-up made (modules,
    settings, the URL conf, the mounts) is frozen out of the cyclic garbage collector, young
    collections come every CHAT GC_THRESHOLD allocations instead of Python's 700, and a full
    collection is considered after OLDEST_AFTER middle ones instead of Python's 10.

    Every held connection keeps ~100 objects the collector tracks (sessions, queues, timers,
    coroutines, rooms), and Python collects the oldest generation again each time a quarter more
    of them has survived: with 10,000 connections one such collection cost ~650 ms of CPU, and
    a ramp of 10,000 handshakes paid for fourteen to seventeen of them (bench/README.md, issue
    19). A higher first threshold means ten times fewer young and middle collections, so fewer
    chances to start a full one; the garbage a handshake leaves in cycles (~23 objects) waits
    a little longer.

    Full collections: a handshake and a connection's end leave next to no cyclic garbage
    (0.2 and 0 objects, bench/README.md session 5): an ended connection is freed by reference
    counting, so nothing waits in the oldest generation for a full collection. Yet with Python's
    10 a ramp of 10,000 handshakes still paid three of them (0.76-0.92 s of CPU on a 2-core EPYC,
    each walking every held connection). Python still skips a full collection until a quarter
    more objects has survived since the last one. Once per process: freezing twice would freeze
    what the first run left."""
    global _collector_done
    threshold = settings.CHAT["GC_THRESHOLD"]
    if _collector_done or threshold <= 0:
        return
    _collector_done = True
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(threshold, middle, OLDEST_AFTER)


_collector_done = False
# Middle collections between two chances of a full one (Python's default: 10).
OLDEST_AFTER = 100


async def startup() -> None:
    collector_tuned()
    bus.count_layer_reconnects()
    await bridge.ensure_started()
    bridge.start_sampler()
    # The presence heartbeat runs from the start, connections or not: it keeps this process
    # registered and cleans up after processes that died.
    await tracker.start()


async def shutdown() -> None:
    await tracker.stop()
    await bridge.stop()


def build_application(django_application: ASGIApp) -> Gateway:
    return Gateway(django_application)
