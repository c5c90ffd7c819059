"""One Engine.IO 3 session: its outbound queue, heartbeat, namespace sockets and packet worker.

Transports (polling requests, a websocket) only move strings in and out; the session owns the
state. One worker task per session takes the client's Socket.IO packets one at a time, so a
client's events reach the hub strictly in order while other clients run concurrently. Pings are
answered by whoever reads them, never queued behind a slow handler.

The outbox holds Engine.IO packets as the transports write them: text packets as strings, binary
messages (Socket.IO attachments) as bytes; each transport frames the bytes its own way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from gateway import lanes
from gateway.ratelimit import TokenBucket
from gateway.transports.binary import BinaryError, Reassembly, TooLarge
from gateway.transports.eager import run_eagerly
from gateway.transports.handshake import Admission, Handshake

from . import codec
from .codec import PacketType, ProtocolError, SioPacket

if TYPE_CHECKING:
    from gateway.hub import Hub

    from .namespace import Eio3Namespace
    from .server import Eio3Server

logger = logging.getLogger(__name__)

OPEN, CLOSING, CLOSED = "open", "closing", "closed"


class _Control:
    """Worker items that skip the inbox bound (they come from the server, not the client)."""

    __slots__ = ("kind", "namespace", "conn_id")

    def __init__(self, kind: str, namespace: Eio3Namespace | None = None, conn_id: str = ""):
        self.kind, self.namespace, self.conn_id = kind, namespace, conn_id


_STOP = _Control("stop")
_CONNECT_ROOT = _Control("connect-root")


class Inbox:
    """FIFO for the session worker. Client packets are bounded (a reader waits for room, which
    holds back a websocket read or a polling POST); control items are not."""

    def __init__(self, limit: int):
        self._items: deque[tuple[bool, object]] = deque()
        self._client = 0
        self._limit = limit
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._closed = False

    async def put(self, item: object) -> None:
        while self._client >= self._limit and not self._closed:
            self._room.clear()
            await self._room.wait()
        if self._closed:
            return
        self._items.append((True, item))
        self._client += 1
        self._readable.set()

    def put_control(self, item: _Control) -> None:
        self._items.append((False, item))
        self._readable.set()

    def close(self) -> None:
        self._closed = True
        self._room.set()

    async def get(self) -> object:
        while not self._items:
            self._readable.clear()
            await self._readable.wait()
        from_client, item = self._items.popleft()
        if from_client:
            self._client -= 1
            self._room.set()
        return item


class Session:
    def __init__(self, server: Eio3Server, sid: str, transport: str, scope: dict, query: dict[str, str]):
        self.server = server
        self.sid = sid
        self.transport = transport  # "polling" or "websocket"; the one that carries the outbox
        self.state = OPEN
        self.outbox: deque[str | bytes] = deque()
        self.b64 = "b64" in query  # the client cannot take binary: attachments go as `b4<base64>`
        self.signal = asyncio.Event()  # outbox, noop or state changed
        # The websocket writer's ASGI send while it waits holding nothing (`deliver` may then
        # write at once); a direct write under way, and its task if the server suspended it.
        self.parked_send = None
        self.writing = False
        self.rest: asyncio.Task | None = None
        self.upgrading = False
        self.noop = False  # answer a waiting poll now (an upgrade is under way)
        self.get_pending = False
        self.post_lock = asyncio.Lock()
        self.sockets: dict[str, str] = {}  # namespace -> conn_id, accepted sockets only
        self.query = query
        self.headers = _headers(scope)
        client = scope.get("client")
        self.remote = client[0] if client else None
        self.inbox = Inbox(server.max_inbound)
        self.bucket = TokenBucket(*server.packet_rate)  # every client packet, not only events
        self.dropped = 0
        self.oversize: set[int] = set()  # packets (by id) over the protocol's event limit
        self.pending: tuple[SioPacket, Reassembly] | None = None  # a binary packet being read
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.last_seen = loop.time()
        self._deadline = server.ping_interval + server.ping_timeout
        self._heartbeat = loop.call_later(self._deadline, self._check_heartbeat)
        self._connect_timer = loop.call_later(server.connect_timeout, self._check_connected)
        self._grace: asyncio.TimerHandle | None = None
        self.worker = asyncio.create_task(self._work(), name=f"eio3-{sid}")

    # --- outbound ------------------------------------------------------------------------------

    def enqueue(self, packet: codec.Outbound) -> None:
        """Queue an encoded packet (a binary one with its attachments, together); a session that
        lets too many pile up is dropped."""
        if self.state != OPEN:
            return
        parts = 1 if isinstance(packet, str) else len(packet)
        if len(self.outbox) + parts > self.server.max_pending:
            logger.warning("eio3 session %s dropped: %d packets pending", self.sid, len(self.outbox))
            self.close("slow consumer", flush=False)
            return
        if parts == 1 and isinstance(packet, str):
            self._push(packet)
        else:
            self.outbox.extend(packet)
            self.signal.set()

    def deliver(self, packet: codec.Outbound) -> None:
        """Queue an encoded packet, or write it to the websocket at once when nothing is ahead of
        it: the writer waits holding nothing, nothing is queued, no other such write is under
        way. That spares a writer wake-up per recipient of a fan-out (the Engine.IO 4 transport
        does the same: gateway/transports/direct_socket.py). A write the server suspends (a slow
        reader) goes on in a task of its own; what is sent meanwhile is queued behind it."""
        send = self.parked_send
        if send is None or self.writing or self.outbox or self.state != OPEN or not isinstance(packet, str):
            self.enqueue(packet)
            return
        self.writing = True
        self.rest = run_eagerly(self._write_now(send, packet))

    async def _write_now(self, send, packet: str) -> None:
        try:
            await send({"type": "websocket.send", "text": packet})
        except Exception:  # the client went away mid-send, as the writer takes it
            self.close("transport error", flush=False)
        finally:
            self.writing = False
            self.rest = None
            if self.outbox or self.state != OPEN:
                self.signal.set()  # the writer waits for this write before the next

    def _push(self, packet: str | bytes) -> None:
        self.outbox.append(packet)
        self.signal.set()

    def drain(self) -> list[str | bytes]:
        packets = list(self.outbox)
        self.outbox.clear()
        return packets

    def delivered(self) -> None:
        """Called by a transport after it wrote a batch: a flushing close ends once all is out."""
        if self.state == CLOSING and not self.outbox:
            self.finalize("closed by server")

    # --- inbound -------------------------------------------------------------------------------

    async def receive(self, packet: str) -> None:
        """Called with each Engine.IO text packet the active transport read."""
        if self.state != OPEN:
            return
        if packet[:1] == "b":  # a binary message as `b4<base64>`
            if len(packet) > self.server.max_payload * 4 // 3 + 8:
                self.fail("packet too large")
                return
            try:
                data = codec.decode_base64_message(packet)
            except ProtocolError as exc:
                self.fail(str(exc))
                return
            await self.receive_binary(data)
            return
        self.last_seen = self._loop.time()
        kind = packet[:1]
        if kind in (codec.PING, codec.MESSAGE) and not self.bucket.take():
            # Every packet counts, pings too (each is answered: a ping storm is an amplifier).
            self.dropped += 1
            if self.dropped >= self.bucket.burst:  # a whole burst more: this client will not stop
                self.fail("packets over the rate limit")
            return
        if kind == codec.PING:
            self._push(codec.PONG + packet[1:])
        elif kind == codec.MESSAGE:
            limit = self.server.max_payload
            if len(packet) > limit or (not packet.isascii() and len(packet.encode()) > limit):
                self.fail("packet too large")
                return
            if self.pending is not None:
                self.fail("text packet while attachments are pending")
                return
            try:
                sio = codec.decode_packet(packet[1:])
            except ProtocolError as exc:
                self.fail(str(exc))
                return
            if sio.type in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
                self._binary_header(sio, packet)
                return
            event_limit = self.server.event_limit
            if event_limit and (
                len(packet) > event_limit or len(packet.encode("utf-8", "surrogatepass")) > event_limit
            ):
                self.oversize.add(id(sio))  # over the protocol's limit: refused, not run
            await self.inbox.put(sio)
        elif kind == codec.CLOSE:
            self.close("client close", flush=False)
        elif kind == codec.NOOP:
            pass
        else:
            self.fail("unexpected engine packet")

    def _binary_header(self, sio: SioPacket, packet: str) -> None:
        """A BINARY_EVENT or BINARY_ACK: held until its attachments have arrived."""
        server = self.server
        try:
            reassembly = Reassembly(
                sio.data,
                sio.attachments,
                header_bytes=len(packet.encode("utf-8", "surrogatepass")),
                max_attachments=server.max_attachments,
                event_limit=server.event_limit or server.max_payload,
                hard_limit=server.max_payload,
            )
        except BinaryError as exc:
            self.fail(str(exc))
            return
        except TooLarge:
            self.fail("binary packet too large")
            return
        self.pending = (sio, reassembly)

    async def receive_binary(self, data: bytes) -> None:
        """Called with each binary Engine.IO message (a Socket.IO attachment) the transport read."""
        if self.state != OPEN:
            return
        self.last_seen = self._loop.time()
        if not self.bucket.take():  # attachments count like any other message
            self.dropped += 1
            if self.dropped >= self.bucket.burst:
                self.fail("packets over the rate limit")
            return
        if self.pending is None:
            self.fail("attachment without a binary packet")
            return
        sio, reassembly = self.pending
        try:
            if not reassembly.add(data):
                return
        except TooLarge:
            self.fail("binary packet too large")
            return
        self.pending = None
        complete = dataclasses.replace(sio, data=reassembly.result())
        if reassembly.oversize:
            self.oversize.add(id(complete))  # over the protocol's limit: refused, not run
        await self.inbox.put(complete)

    def fail(self, reason: str) -> None:
        """Protocol error: drop the session. `reason` names the fault, never the data."""
        logger.info("eio3 session %s closed: %s", self.sid, reason)
        self.close(reason, flush=False)

    # --- namespace sockets ---------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            item = await self.inbox.get()
            if item is _STOP:
                return
            try:
                if isinstance(item, _Control):
                    await self._control(item)
                elif self.state == OPEN:
                    await self._dispatch(item)
            except Exception:
                logger.exception("eio3 session %s: packet handling failed", self.sid)
                self.close("internal error", flush=False)

    async def _control(self, item: _Control) -> None:
        if item is _CONNECT_ROOT:
            if self.state == OPEN:
                await self._connect("/", "", implicit=True)
        elif item.kind == "forget":
            try:
                await item.namespace.hub.forget(item.conn_id)
            except Exception:
                logger.exception("eio3 hub.forget failed for %s", item.conn_id)

    async def _dispatch(self, packet: SioPacket) -> None:
        kind, nsp = packet.type, packet.nsp
        if kind == PacketType.CONNECT:
            await self._connect(nsp, packet.query, implicit=False)
        elif kind == PacketType.DISCONNECT:
            self.end_socket(nsp, notify=False)
        elif kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
            conn_id = self.sockets.get(nsp)
            if conn_id is None:
                return  # not connected to that namespace (yet, or any more): dropped as socket.io does
            hub = self.server.namespaces[nsp].hub
            oversize = id(packet) in self.oversize
            self.oversize.discard(id(packet))
            lane = None if oversize else hub.lane(conn_id, packet.data[0])
            if lane is None:
                await self._event(hub, nsp, conn_id, packet, oversize)
            else:  # may run ahead of this socket's earlier sends (gateway/lanes.py)
                await lanes.run(lane, functools.partial(self._event, hub, nsp, conn_id, packet, oversize))
        # ACK, BINARY_ACK: the server never asks for acks, so there is nothing to match; ignored.

    async def _event(self, hub: Hub, nsp: str, conn_id: str, packet: SioPacket, oversize: bool) -> None:
        try:
            result = await hub.handle(conn_id, packet.data[0], packet.data[1:], oversize=oversize)
        except Exception:
            logger.exception("eio3 hub.handle failed for %s", conn_id)
            return
        await lanes.turn()  # pipelined: after the socket's earlier events' acks
        if packet.id is not None and result is not None and self.sockets.get(nsp) == conn_id:
            self.enqueue(codec.encode_ack(nsp, packet.id, list(result)))

    async def _connect(self, nsp: str, query: str, *, implicit: bool) -> None:
        namespace = self.server.namespaces.get(nsp)
        if namespace is None:
            if not implicit:
                self.enqueue(codec.encode_error(nsp, "Invalid namespace"))
            return
        if nsp in self.sockets:
            return  # already connected; a repeated CONNECT changes nothing
        conn_id = self.sid if nsp == "/" else f"{nsp}#{self.sid}"
        merged = dict(self.query)
        merged.update(parse_qsl(query, keep_blank_values=True))
        handshake = Handshake(
            auth=None,
            headers=dict(self.headers),
            query=merged,
            transport="eio3",
            remote=self.remote,
            namespace=nsp,
        )
        try:
            admission = await namespace.hub.connect(conn_id, handshake)
        except Exception:
            logger.exception("eio3 hub.connect failed for %s", conn_id)
            admission = Admission(False, "internal_error")
        if not admission.accepted:
            self.enqueue(codec.encode_error(nsp, admission.error))
            return
        if self.state != OPEN:
            # Accepted while the session went away: the hub saw a connect, so it sees the end.
            self.inbox.put_control(_Control("forget", namespace, conn_id))
            return
        self.sockets[nsp] = conn_id
        namespace.attach(conn_id, self)
        self.enqueue(codec.encode_connect(nsp))
        try:
            await namespace.hub.greet(conn_id)
        except Exception:
            logger.exception("eio3 hub.greet failed for %s", conn_id)

    def end_socket(self, nsp: str, *, notify: bool) -> None:
        """End one namespace socket now (no more sends reach it); the hub forgets it in order."""
        conn_id = self.sockets.pop(nsp, None)
        if conn_id is None:
            return
        namespace = self.server.namespaces[nsp]
        namespace.detach(conn_id)
        if notify:
            self._push(codec.encode_disconnect(nsp))
        self.inbox.put_control(_Control("forget", namespace, conn_id))

    def close_socket(self, nsp: str) -> None:
        """Server-side disconnect of one namespace; the last one closes the session."""
        if self.state != OPEN:
            return
        self.end_socket(nsp, notify=True)
        if not self.sockets:
            self.close("closed by server", flush=True)

    # --- life ----------------------------------------------------------------------------------

    def close(self, reason: str, *, flush: bool) -> None:
        """End the session. With `flush`, what is queued (and an Engine.IO close) goes out first,
        bounded by the ping timeout; without, everything stops now."""
        if self.state == CLOSED:
            return
        if self.state == CLOSING:
            if not flush:
                self.finalize(reason)
            return
        self.state = CLOSING
        for nsp in list(self.sockets):
            self.end_socket(nsp, notify=False)
        if flush:
            self._push(codec.CLOSE)
            self._grace = self._loop.call_later(self.server.ping_timeout, self.finalize, reason)
        else:
            self.finalize(reason)

    def finalize(self, reason: str) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        for timer in (self._heartbeat, self._connect_timer, self._grace):
            if timer is not None:
                timer.cancel()
        self.server.sessions.pop(self.sid, None)
        for nsp in list(self.sockets):
            self.end_socket(nsp, notify=False)
        self.outbox.clear()
        self.pending = None  # a binary packet still waiting for attachments is dropped
        self.inbox.put_control(_STOP)
        self.inbox.close()
        self.signal.set()
        logger.debug("eio3 session %s ended: %s", self.sid, reason)

    def _check_heartbeat(self) -> None:
        # Any packet from the client counts as alive (engine.io 3 does the same); v3 clients
        # ping every pingInterval, so a silent client is dropped pingInterval + pingTimeout after
        # its last packet.
        if self.state == CLOSED:
            return
        idle = self._loop.time() - self.last_seen
        if idle >= self._deadline:
            logger.info("eio3 session %s closed: ping timeout", self.sid)
            self.close("ping timeout", flush=False)
        else:
            self._heartbeat = self._loop.call_later(self._deadline - idle, self._check_heartbeat)

    def _check_connected(self) -> None:
        if self.state == OPEN and not self.sockets:
            logger.info("eio3 session %s closed: no namespace connected", self.sid)
            self.close("connect timeout", flush=False)

    def start(self, *, connect_root: bool) -> None:
        """Queue the open packet (and the implicit connection to `/`, v4 protocol)."""
        self._push(self.server.open_packet(self.sid, upgrades=self.transport == "polling"))
        if connect_root:
            self.inbox.put_control(_CONNECT_ROOT)


def _headers(scope: dict) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            headers[name] += ("; " if name == "cookie" else ", ") + value
        else:
            headers[name] = value
    return headers
