"""Eio3Server: Engine.IO 3 (polling, websocket, upgrade) + Socket.IO protocol 4 as an ASGI app.

Serves socket.io-client 2.x beside python-socketio 5 in the same process: a dispatcher asks
`wants(scope)` and routes EIO=3 requests (and requests for our session ids) here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from urllib.parse import parse_qsl, urlsplit

from . import codec
from .namespace import Eio3Namespace
from .ports import HubPort
from .session import CLOSED, OPEN, Session

logger = logging.getLogger(__name__)

UPGRADE_TIMEOUT = 10.0  # seconds for a probe websocket to finish the upgrade (engine.io's default)

# Engine.IO error codes, as engine.io answers them.
UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_PROTOCOL = range(6)


class _BodyTooLarge(Exception):
    pass


class Eio3Server:
    """One Engine.IO path; namespaces are mounted with their hub.

    Times are seconds. `max_payload` bounds one packet (UTF-8 bytes, and UTF-16 units in a polling
    frame); `max_http_body` one polling POST (413 beyond); `max_pending` the packets queued for one
    client (a session over it is dropped); `max_inbound` the client packets waiting for the hub
    (reading stops until there is room). `cors_allowed_origins`: None allows only the request's own
    host, a list allows exactly those origins; requests without Origin are always allowed.
    `max_attachments`: a binary packet that declares more is answered as oversize, and a binary
    packet with its attachments counts against `max_payload` and `event_limit` as a whole
    (gateway/transports/binary.py).
    """

    def __init__(
        self,
        path: str = "/socket.io",
        *,
        ping_interval: float = 25,
        ping_timeout: float = 20,
        max_payload: int = 64 * 1024,
        max_http_body: int | None = None,
        max_pending: int = 1000,
        max_inbound: int = 64,
        connect_timeout: float = 45,
        cors_allowed_origins: list[str] | None = None,
        allow_upgrades: bool = True,
        event_limit: int = 0,
        packet_rate: tuple[float, float] = (120, 40),
        max_attachments: int = 10,
    ):
        self.path = "/" + path.strip("/")
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self.max_http_body = max_http_body if max_http_body is not None else max_payload * 2
        self.max_pending = max_pending
        self.max_inbound = max_inbound
        self.connect_timeout = connect_timeout
        self.cors_allowed_origins = None if cors_allowed_origins is None else set(cors_allowed_origins)
        self.allow_upgrades = allow_upgrades
        # A packet over `event_limit` (0: none) but under `max_payload` reaches the hub flagged
        # oversize (answered with the protocol's payload_too_large, nothing run), as on Engine.IO
        # 4; `packet_rate` (burst, per second) budgets every client packet of a session.
        self.event_limit = event_limit
        self.packet_rate = packet_rate
        self.max_attachments = max_attachments
        self.namespaces: dict[str, Eio3Namespace] = {}
        self.sessions: dict[str, Session] = {}

    def mount(self, namespace: str, hub: HubPort) -> Eio3Namespace:
        if namespace in self.namespaces:
            raise ValueError(f"namespace {namespace} is already mounted")
        mounted = Eio3Namespace(namespace, hub)
        self.namespaces[namespace] = mounted
        return mounted

    def wants(self, scope: dict) -> bool:
        """True for requests this server answers: its path and EIO=3, or one of its session ids."""
        if scope.get("type") not in ("http", "websocket"):
            return False
        if "/" + scope.get("path", "").strip("/") != self.path:
            return False
        query = _query(scope)
        return query.get("EIO") == "3" or query.get("sid", "") in self.sessions

    def open_packet(self, sid: str, *, upgrades: bool) -> str:
        body = {
            "sid": sid,
            "upgrades": ["websocket"] if upgrades and self.allow_upgrades else [],
            "pingInterval": int(self.ping_interval * 1000),
            "pingTimeout": int(self.ping_timeout * 1000),
        }
        return codec.OPEN + json.dumps(body, separators=(",", ":"))

    async def close_all(self) -> None:
        """Drop every session (shutdown)."""
        for session in list(self.sessions.values()):
            session.close("server shutdown", flush=False)

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # only when served alone; a dispatcher calls close_all()
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        if not self.wants(scope):
            await _json_error(send, 400, UNSUPPORTED_PROTOCOL, "Unsupported protocol version")
            return
        query = _query(scope)
        origin = _header(scope, b"origin")
        if origin is not None and not self._origin_allowed(origin, scope):
            await _json_error(send, 403, FORBIDDEN, "Forbidden")
            return
        cors = _cors_headers(origin)
        method = scope["method"]
        if method == "OPTIONS":
            requested = _header(scope, b"access-control-request-headers") or "content-type"
            await _respond(
                send,
                204,
                b"",
                headers=[
                    *cors,
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", requested.encode("latin-1")),
                    (b"access-control-max-age", b"86400"),
                ],
            )
            return
        if query.get("EIO") != "3":
            await _json_error(send, 400, UNSUPPORTED_PROTOCOL, "Unsupported protocol version", cors)
            return
        if query.get("transport") != "polling":
            await _json_error(send, 400, UNKNOWN_TRANSPORT, "Transport unknown", cors)
            return
        if "j" in query:  # JSONP polling is not served
            await _json_error(send, 400, BAD_REQUEST, "Bad request", cors)
            return
        sid = query.get("sid")
        if sid is None:
            if method != "GET":
                await _json_error(send, 400, BAD_HANDSHAKE_METHOD, "Bad handshake method", cors)
                return
            session = self._new_session("polling", scope, query)
            await self._poll(session, receive, send, cors)
            return
        session = self.sessions.get(sid)
        if session is None:
            await _json_error(send, 400, UNKNOWN_SID, "Session ID unknown", cors)
            return
        if session.transport != "polling":
            await _json_error(send, 400, BAD_REQUEST, "Bad request", cors)
            return
        if method == "GET":
            await self._poll(session, receive, send, cors)
        elif method == "POST":
            await self._post(session, scope, receive, send, cors)
        else:
            await _json_error(send, 400, BAD_REQUEST, "Bad request", cors)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close_all()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _new_session(self, transport: str, scope: dict, query: dict[str, str]) -> Session:
        sid = secrets.token_urlsafe(15)
        session = Session(self, sid, transport, scope, query)
        self.sessions[sid] = session
        session.start(connect_root="/" in self.namespaces)
        return session

    def _origin_allowed(self, origin: str, scope: dict) -> bool:
        if self.cors_allowed_origins is not None:
            return origin in self.cors_allowed_origins
        host = _header(scope, b"host")
        return host is not None and urlsplit(origin).netloc == host

    # --- polling -------------------------------------------------------------------------------

    async def _poll(self, session: Session, receive, send, cors) -> None:
        """A long-poll GET: answered when there is something to send (or the session ends)."""
        if session.get_pending:
            session.fail("overlapping poll")
            await _json_error(send, 400, BAD_REQUEST, "Bad request", cors)
            return
        session.get_pending = True
        disconnect = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            while not (
                session.outbox or session.noop or session.state == CLOSED or session.transport != "polling"
            ):
                session.signal.clear()
                waiter = asyncio.ensure_future(session.signal.wait())
                done, _ = await asyncio.wait({waiter, disconnect}, return_when=asyncio.FIRST_COMPLETED)
                if disconnect in done:
                    waiter.cancel()
                    return  # the client went away; what is queued waits for its next poll
        finally:
            session.get_pending = False
            disconnect.cancel()
        packets = session.drain() if session.transport == "polling" else []
        if not packets:
            packets = [codec.CLOSE] if session.state == CLOSED else [codec.NOOP]
        if all(isinstance(packet, str) for packet in packets):
            body = codec.encode_payload(packets).encode()
            content_type = b"text/plain; charset=UTF-8"
        elif session.b64:  # the client cannot take binary: attachments as `b4<base64>` text
            text = [p if isinstance(p, str) else codec.encode_base64_message(p) for p in packets]
            body = codec.encode_payload(text).encode()
            content_type = b"text/plain; charset=UTF-8"
        else:
            body = codec.encode_binary_payload(packets)
            content_type = b"application/octet-stream"
        await _respond(send, 200, body, content_type=content_type, headers=cors)
        session.delivered()

    async def _post(self, session: Session, scope, receive, send, cors) -> None:
        try:
            body = await _read_body(scope, receive, self.max_http_body)
        except _BodyTooLarge:
            session.fail("polling body too large")
            await _json_error(send, 413, BAD_REQUEST, "Payload too large", cors)
            return
        binary = (_header(scope, b"content-type") or "").startswith("application/octet-stream")
        async with session.post_lock:
            try:
                if binary:
                    packets = codec.decode_binary_payload(body, max_packet=self.max_payload)
                else:  # `b4<base64>` frames are a third longer than the bytes they carry
                    packets = codec.decode_payload(
                        body.decode("utf-8"), max_packet=self.max_payload * 4 // 3 + 8
                    )
            except (UnicodeDecodeError, codec.ProtocolError) as exc:
                session.fail(f"bad polling payload ({type(exc).__name__})")
                await _json_error(send, 400, BAD_REQUEST, "Bad request", cors)
                return
            for packet in packets:
                if isinstance(packet, bytes):
                    await session.receive_binary(packet)
                else:
                    await session.receive(packet)
                if session.state != OPEN:
                    break
        await _respond(send, 200, b"ok", content_type=b"text/html", headers=cors)

    # --- websocket -----------------------------------------------------------------------------

    async def _websocket(self, scope, receive, send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        query = _query(scope)
        origin = _header(scope, b"origin")
        sid = query.get("sid")
        refused = (
            not self.wants(scope)
            or query.get("EIO") != "3"
            or (origin is not None and not self._origin_allowed(origin, scope))
            or "j" in query
        )
        session = None
        if not refused and sid is not None:
            session = self.sessions.get(sid)
            refused = session is None or session.transport != "polling" or session.upgrading
        if refused:
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        await send({"type": "websocket.accept"})
        if session is None:
            session = self._new_session("websocket", scope, query)
        elif not await self._upgrade(session, receive, send):
            return
        else:
            session.b64 = "b64" in query  # binary support is per transport (engine.io 3)
        await self._serve_websocket(session, receive, send)

    async def _upgrade(self, session: Session, receive, send) -> bool:
        """Probe (`2probe` -> `3probe`), then `5`: the websocket takes over from polling."""
        session.upgrading = True
        try:
            async with asyncio.timeout(UPGRADE_TIMEOUT):
                first = await receive()
                if first.get("text") != "2probe" or session.state != OPEN:
                    raise _UpgradeFailed
                await send({"type": "websocket.send", "text": "3probe"})
                session.noop = True  # a waiting poll returns now, so the client can pause polling
                session.signal.set()
                second = await receive()
                if second.get("text") != codec.UPGRADE or session.state != OPEN:
                    raise _UpgradeFailed
        except (TimeoutError, _UpgradeFailed):
            await _ws_close(send)
            return False
        finally:
            session.upgrading = False
            session.noop = False
        session.transport = "websocket"
        session.last_seen = asyncio.get_running_loop().time()
        session.signal.set()  # the polling side (if waiting) answers with noop; the writer starts
        return True

    async def _serve_websocket(self, session: Session, receive, send) -> None:
        writer = asyncio.create_task(self._ws_writer(session, send))
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is not None:
                    await session.receive(text)
                    continue
                data = message.get("bytes") or b""
                if data[:1] != b"\x04":  # only messages carry binary: `\x04<attachment>`
                    session.fail("binary frame that is not a message")
                elif len(data) - 1 > self.max_payload:
                    session.fail("packet too large")
                else:
                    await session.receive_binary(data[1:])
        finally:
            writer.cancel()
            session.close("transport close", flush=False)

    async def _ws_writer(self, session: Session, send) -> None:
        try:
            while True:
                if session.outbox and not session.writing:  # after a direct write under way
                    for packet in session.drain():
                        if isinstance(packet, str):
                            await send({"type": "websocket.send", "text": packet})
                        elif session.b64:
                            await send(
                                {"type": "websocket.send", "text": codec.encode_base64_message(packet)}
                            )
                        else:
                            await send({"type": "websocket.send", "bytes": b"\x04" + packet})
                    session.delivered()
                    continue
                if session.state == CLOSED and not session.writing:
                    await _ws_close(send)
                    return
                session.signal.clear()
                if not session.outbox:  # holding nothing: `Session.deliver` may write directly
                    session.parked_send = send
                try:
                    await session.signal.wait()
                finally:
                    session.parked_send = None
        except asyncio.CancelledError:
            raise
        except Exception:  # the client went away mid-send (uvicorn raises ClientDisconnected)
            session.close("transport error", flush=False)


class _UpgradeFailed(Exception):
    pass


# --- ASGI helpers ------------------------------------------------------------------------------


def _query(scope: dict) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _cors_headers(origin: str | None) -> list[tuple[bytes, bytes]]:
    if origin is None:
        return []
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


async def _respond(send, status: int, body: bytes, *, content_type: bytes | None = None, headers=()) -> None:
    all_headers = [(b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
    if content_type is not None:
        all_headers.append((b"content-type", content_type))
    all_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _json_error(send, status: int, code: int, message: str, headers=()) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await _respond(send, status, body, content_type=b"application/json", headers=headers)


async def _read_body(scope, receive, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _wait_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _ws_close(send) -> None:
    try:
        await send({"type": "websocket.close", "code": 1000})
    except Exception:  # already closed by the client
        logger.debug("eio3 websocket already closed")
