"""Socket.IO over Engine.IO 4 (python-socketio): one AsyncServer per Engine.IO path and host,
one namespace per mounted protocol, each namespace a thin shell over its hub.

Local routing uses python-socketio's own in-process rooms, named like the bus groups: a bus
event for group G is encoded once and queued on every local socket in room G. There is no
python-socketio client manager on Redis: the channel layer is the bus.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import engineio
import socketio
from engineio import packet as eio_packet
from socketio import exceptions, packet

from chatproject.core.tasks import spawn
from gateway import lanes
from gateway.auth import query_dict
from gateway.lanes import Lane
from gateway.ratelimit import TokenBucket

from . import safe_json
from .binary import BinaryError, Reassembly, TooLarge
from .direct_socket import DirectEngineServer
from .handshake import Handshake

if TYPE_CHECKING:
    from gateway.hub import Hub

logger = logging.getLogger(__name__)

NAME = "eio4"
# How long a protocol that answers CONNECT after authenticating waits for python-socketio to
# have sent it before greeting (it is sent right after the connect handler returns).
CONNECT_WAIT_SECONDS = 5.0
# A Socket.IO packet's first character is its type.
BINARY_TYPES = (str(packet.BINARY_EVENT), str(packet.BINARY_ACK))
# Malformed packets one connection may send before it is closed.
MALFORMED_LIMIT = 5
# A text EVENT packet as python-socketio decodes it: type 2, an optional namespace ("/name,"),
# an optional ack id, then the JSON of the event's name and arguments (an array). What does not
# match (an attachment count, a namespace with a query, an id of 16 digits or more, no array)
# is decoded by python-socketio itself (`GatewayServer._text_event`).
TEXT_EVENT = re.compile(r"2(?:(/[^,?]*),)?([0-9]{1,15})?(?=\[)")
# A namespace's event handler on the shortcut: (sid, Engine.IO sid, event name, arguments) ->
# the ack's arguments (None: an empty ack, if the client asked for one).
EventHandler = Callable[[str, str, str, list], Awaitable[list | None]]


class _QuietReceiveErrors(logging.Filter):
    """python-engineio logs a traceback ("Unknown receive error") for every Engine.IO packet it
    cannot decode (an unknown type such as `9`), then closes that session: a client could flood
    the log with them. The close stays; the record becomes one warning line without the
    traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.msg == "Unknown receive error":
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "engine.io session closed on a malformed packet"
        return True


logging.getLogger("engineio.server").addFilter(_QuietReceiveErrors())


def encode_packet(
    packet_class: type[packet.Packet],
    packet_type: int,
    data: Any,
    namespace: str | None,
    id: int | None = None,
) -> str | list:
    """A Socket.IO EVENT or ACK packet as python-socketio's `Packet.encode` writes it, with its
    JSON encoded first: `Packet` walks the whole payload for bytes on every packet (to choose a
    binary packet), ~4% of the event loop's samples for direct messages (issue 19), and no
    payload the gateway sends holds bytes (the events are JSON-ready: tests/messaging). A payload
    that does fails `json.dumps` with TypeError and goes through `Packet` itself (a binary
    packet: a list, header first), as do payloads JSON cannot encode (`Packet` raises the same
    TypeError)."""
    try:
        text = packet_class.json.dumps(data, separators=(",", ":"))
    except TypeError:
        return packet_class(packet_type, data=data, namespace=namespace, id=id).encode()
    prefix = str(packet_type)
    if namespace is not None and namespace != "/":
        prefix += namespace + ","
    if id is not None:
        prefix += str(id)
    return prefix + text


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    return {
        key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
    }


class GatewayManager(socketio.AsyncManager):
    """python-socketio's in-process manager, with each session's rooms indexed.

    python-socketio (5.18, pinned) finds the rooms a leaving session was in by walking every room
    of the namespace: with 10,000 connections (a sid room and a user-group room each) one
    disconnect cost 2.7 ms of CPU, and a reconnect storm's timed-out handshakes and any churn of
    a full process pay it per disconnect. Here the rooms a session entered besides its namespace
    entry (`None`) and its own sid room are kept per session (a short list: its user's group
    and its group conversations), and a disconnect leaves exactly those.

    Overrides `basic_enter_room`, `basic_leave_room` and `basic_disconnect` (the tail of the
    last, the callbacks and the pending lists, as python-socketio's), and reads a room's members
    as `get_participants` does (`members`)."""

    def __init__(self) -> None:
        super().__init__()
        self.joined: dict[str, dict[str, list[Any]]] = {}  # namespace -> sid -> rooms entered

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if room is None or room == sid:
            return
        rooms = self.joined.setdefault(namespace, {}).setdefault(sid, [])
        if room not in rooms:
            rooms.append(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        joined = self.joined.get(namespace)
        rooms = joined.get(sid) if joined is not None else None
        if rooms is None or room not in rooms:
            return
        rooms.remove(room)
        if not rooms:
            del joined[sid]
            if not joined:
                del self.joined[namespace]

    def members(self, namespace: str, room: Any) -> Any:
        """The (sid, Engine.IO sid) pairs of one room of a namespace, as python-socketio's
        `get_participants` yields them for a single room (5.18: the items of the room's forward
        map), without its generator and its copy of the map: a live view, to be read before
        anything awaits (a fan-out makes its list of recipients from it at once)."""
        rooms = self.rooms.get(namespace)
        members = rooms.get(room) if rooms is not None else None
        return members._fwdm.items() if members is not None else ()

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        if namespace not in self.rooms:
            return
        for room in list(self.joined.get(namespace, {}).get(sid, ())):
            self.basic_leave_room(sid, namespace, room)
        self.basic_leave_room(sid, namespace, sid)
        self.basic_leave_room(sid, namespace, None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]


class GatewayServer(socketio.AsyncServer):
    """python-socketio's server, with two checks on every Engine.IO message before it is
    decoded: the size of each packet against the protocols' limit, so an event over it is
    answered with the protocol's error instead of dropping the connection (Engine.IO's own
    ceiling, `max_http_buffer_size`, still drops what is larger); and binary packets are read
    here, not by python-socketio (which waits for as many attachments as the header claims, of
    any size, and trusts its placeholders): strictly and within the same limits, the packet and
    its attachments counted as one payload (gateway/transports/binary.py). A malformed binary
    packet, an attachment nobody announced, or a text packet while attachments are due close
    the session: the framing is lost (socket.io's own server closes on any parser error).

    Malformed packets are dropped with one warning per connection, and a client that keeps
    sending them is closed. Every Socket.IO packet of a session, not only events, takes from a
    rate budget (twice the event budget): packets over it are dropped, and a session that goes
    on past a further burst is closed.

    A text EVENT packet for a namespace the gateway mounted takes a shortcut (`_text_event`):
    decoded once and handed straight to the namespace's handler, as python-socketio's decode,
    `_handle_event`, `_handle_event_internal` and `_trigger_event` would hand it, without their
    five coroutine layers (issue 19: the inbound path was ~22% of the event loop's work per
    direct message). Whatever the shortcut does not cover goes python-socketio's way.

    Overrides python-socketio's `_handle_eio_message`, `_handle_event_internal` and
    `_handle_eio_disconnect`, and calls its `_handle_event`, `_handle_ack` and
    `Packet.attachment_count` for binary packets (5.18, pinned; tests/gateway/test_limits_live.py, test_malformed_live.py, test_binary_live.py and
    transports/test_socketio_binary.py and test_socketio_events.py cover them).
    """

    def __init__(
        self,
        *,
        event_limit: int,
        connect_timeout: float,
        packet_rate: tuple[float, float],
        max_attachments: int = 10,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("client_manager", GatewayManager())
        super().__init__(**kwargs)
        self.event_limit = event_limit
        self.max_attachments = max_attachments
        self.binary: dict[str, tuple[Any, Reassembly]] = {}  # Engine.IO sid -> packet being read
        self.connect_timeout = connect_timeout
        self.packet_rate = packet_rate  # (burst, per second) of Socket.IO packets per session
        self.buckets: dict[str, TokenBucket] = {}
        self.dropped: dict[str, int] = {}
        self.oversize: set[str] = set()  # Engine.IO sids whose message is being handled
        self.malformed: dict[str, int] = {}  # Engine.IO sid -> malformed packets so far
        # Namespace -> (its "*" handler, the same handler for the shortcut): `on_events`.
        self.event_handlers: dict[str, tuple[Callable[..., Any], EventHandler]] = {}

    def on_events(
        self,
        namespace: str,
        any_event: Callable[..., Any],
        handler: EventHandler,
        lane: Callable[[str, str], Lane | None] = lambda sid, event: None,
    ) -> None:
        """Register a namespace's handler of every client event: `any_event` as python-socketio's
        catch-all ("*": event, sid, *args) and `handler`, the same handler, for text EVENT packets
        that take the shortcut; `lane(sid, event)`: the lane to run such an event in, if it may
        run ahead of the connection's earlier events (gateway/lanes.py)."""
        self.on("*", any_event, namespace=namespace)
        self.event_handlers[namespace] = (any_event, handler, lane)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return DirectEngineServer  # less held per session (engine.py), direct writes

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """An Engine.IO session opened: it must join a namespace within the connect timeout, or
        it is closed (a session that never does only holds memory and a socket).

        python-socketio keeps the environ of the request that opened the session for the
        session's life. Its `wsgi.input` is the body of that request (python-engineio reads the
        body of each later POST from that POST's own environ): an instance of a class that
        python-engineio's ASGI driver defines anew for every request, ~2.4 KiB per connection
        with its class. Dropped here; nothing reads it after the connect."""
        environ.pop("wsgi.input", None)
        await super()._handle_eio_connect(eio_sid, environ)
        asyncio.get_running_loop().call_later(self.connect_timeout, self._joined_or_closed, eio_sid)

    def _joined_or_closed(self, eio_sid: str) -> None:
        """At the connect timeout, in the timer itself: a task is made only for a session to
        close, not for every session that opened (which all made one, connect_timeout after)."""
        if eio_sid not in self.environ:  # already gone
            return
        if any(self.manager.sid_from_eio_sid(eio_sid, namespace) for namespace in self.handlers):
            return
        logger.info("engine.io session joined no namespace in time: eio=%s", eio_sid)
        spawn(self.eio.disconnect(eio_sid))

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self.binary.pop(eio_sid, None)  # attachments still due: dropped with the session
        self.malformed.pop(eio_sid, None)
        self.buckets.pop(eio_sid, None)
        self.dropped.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        bucket = self.buckets.get(eio_sid)
        if bucket is None:
            bucket = self.buckets[eio_sid] = TokenBucket(*self.packet_rate)
        if not bucket.take():  # every packet counts, not only events (acks, connects, junk)
            dropped = self.dropped.get(eio_sid, 0) + 1
            self.dropped[eio_sid] = dropped
            if dropped == 1:
                logger.warning("socket.io packets over the rate limit dropped: eio=%s", eio_sid)
            if dropped >= self.packet_rate[0]:  # a whole burst more: this client will not stop
                await self.eio.disconnect(eio_sid)
            return
        if not isinstance(data, str):
            await self._attachment(eio_sid, data)
            return
        if eio_sid in self.binary:
            await self._binary_refused(eio_sid, "text packet while attachments are pending")
            return
        if data[:1] in BINARY_TYPES:
            await self._binary_header(eio_sid, data)
            return
        limit = self.event_limit
        if len(data) > limit or (
            len(data) * 4 > limit and len(data.encode("utf-8", "surrogatepass")) > limit
        ):
            self.oversize.add(eio_sid)
        try:
            if data[:1] == "2":
                await self._text_event(eio_sid, data)
            else:
                await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError, RecursionError):
            # A packet python-socketio cannot decode or dispatch (a bad type, broken JSON, an
            # event name that is not a string): dropped, counted, one warning per connection;
            # a client that keeps sending them is closed.
            await self._malformed(eio_sid)
        finally:
            self.oversize.discard(eio_sid)

    async def _text_event(self, eio_sid: str, data: str) -> None:
        """A text EVENT packet (`2...`). Decoded as python-socketio's `Packet.decode` decodes it
        (the same JSON text to the same `loads`, or for safe_json the same scanner without
        copying the text: broken JSON raises the same ValueError), then,
        when the namespace's events go to one catch-all handler registered with `on_events`,
        that handler is called as python-socketio's `_handle_event` and `_trigger_event` would
        call it: only for a session connected to the namespace, never for an event name that
        has a handler of its own or is reserved, with a CancelledError taken for no answer (as
        `_trigger_event` takes it), and its ack sent if the client asked for one. Anything else
        (a packet the pattern does not match, a payload that is not an array starting with a
        string, a namespace without such a handler, python-socketio's info logging or
        `async_handlers` on) goes python-socketio's own way from where the shortcut stands."""
        match = TEXT_EVENT.match(data)
        if match is None:
            await super()._handle_eio_message(eio_sid, data)
            return
        namespace, digits = match.group(1, 2)
        namespace = namespace or "/"
        id = int(digits) if digits is not None else None
        json = self.packet_class.json  # the server's `json` option: safe_json (gateway/asgi.py)
        if json is safe_json:
            payload = safe_json.loads_at(data, match.end())
        else:
            payload = json.loads(data[match.end() :])
        registered = self.event_handlers.get(namespace)
        if (
            registered is None
            or type(payload) is not list
            or not payload
            or type(event := payload[0]) is not str
            or self.async_handlers
            or self.logger.isEnabledFor(logging.INFO)  # python-socketio logs every event then
        ):
            await self._handle_event(eio_sid, namespace, id, payload)
            return
        handlers = self.handlers[namespace]
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if (
            event in handlers
            or event in self.reserved_events
            or handlers.get("*") is not registered[0]
            or sid is None
            or not self.manager.is_connected(sid, namespace)
        ):
            await self._handle_event(eio_sid, namespace, id, payload)
            return
        lane = registered[2](sid, event) if eio_sid not in self.oversize else None
        if lane is not None:
            await lanes.run(
                lane,
                functools.partial(self._event, registered[1], sid, eio_sid, event, payload, namespace, id),
            )
            return
        await self._event(registered[1], sid, eio_sid, event, payload, namespace, id)

    async def _event(
        self,
        handler: EventHandler,
        sid: str,
        eio_sid: str,
        event: str,
        payload: list,
        namespace: str,
        id: int | None,
    ) -> None:
        try:
            ack = await handler(sid, eio_sid, event, payload[1:])
        except asyncio.CancelledError:  # as python-socketio's `_trigger_event` (5.18) takes it
            ack = None
        if id is not None:
            await lanes.turn()  # pipelined: after the connection's earlier events' acks
            await self._send_ack(eio_sid, namespace, id, [] if ack is None else ack)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: list, namespace: str, id: int | None
    ) -> None:
        """python-socketio's (5.18, pinned): run the event's handler, then send its ack if the
        client asked for one; the ack encoded by `encode_packet`."""
        r = await server._trigger_event(data[0], namespace, sid, *data[1:])
        if r is self.not_handled or id is None:
            return
        args = [] if r is None else list(r) if isinstance(r, tuple) else [r]
        await self._send_ack(eio_sid, namespace, id, args)

    async def _send_ack(self, eio_sid: str, namespace: str, id: int, args: list) -> None:
        """An ack, encoded by `encode_packet`, handed to its Engine.IO session as python-engineio's
        `send` and `send_packet` hand it (4.15, pinned), without their two coroutine layers; a
        session that is gone or closed goes through `send` itself (dropped, with its warning)."""
        encoded = encode_packet(self.packet_class, packet.ACK, args, namespace, id)
        socket = self.eio.sockets.get(eio_sid)
        for part in encoded if isinstance(encoded, list) else [encoded]:
            if socket is None or socket.closed:
                await self.eio.send(eio_sid, part)
            else:
                await socket.send(eio_packet.Packet(eio_packet.MESSAGE, data=part))

    async def _binary_header(self, eio_sid: str, data: str) -> None:
        """A BINARY_EVENT or BINARY_ACK header: held until its attachments have arrived."""
        try:
            pkt = self.packet_class(encoded_packet=data)
            if pkt.packet_type == packet.BINARY_EVENT:
                valid = isinstance(pkt.data, list) and pkt.data and isinstance(pkt.data[0], str)
            else:
                valid = pkt.id is not None and isinstance(pkt.data, list)
            if not valid:
                raise BinaryError("bad binary packet")
            header_bytes = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
            reassembly = Reassembly(
                pkt.data,
                pkt.attachment_count,
                header_bytes=header_bytes,
                max_attachments=self.max_attachments,
                event_limit=self.event_limit,
                hard_limit=self.eio.max_http_buffer_size,
            )
        except TooLarge:
            await self._binary_refused(eio_sid, "binary packet too large")
            return
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:  # BinaryError too
            await self._binary_refused(
                eio_sid, str(exc) if isinstance(exc, BinaryError) else "bad binary packet"
            )
            return
        self.binary[eio_sid] = (pkt, reassembly)

    async def _attachment(self, eio_sid: str, data: bytes) -> None:
        """A binary Engine.IO message: the next attachment of the packet being read."""
        pending = self.binary.get(eio_sid)
        if pending is None:
            await self._binary_refused(eio_sid, "attachment without a binary packet")
            return
        pkt, reassembly = pending
        try:
            if not reassembly.add(data):
                return
        except TooLarge:
            await self._binary_refused(eio_sid, "binary packet too large")
            return
        del self.binary[eio_sid]
        if reassembly.oversize:
            self.oversize.add(eio_sid)
        try:
            if pkt.packet_type == packet.BINARY_EVENT:
                await self._handle_event(eio_sid, pkt.namespace, pkt.id, reassembly.result())
            else:  # the server asks for no acks: python-socketio finds no callback and ignores it
                await self._handle_ack(eio_sid, pkt.namespace, pkt.id, reassembly.result())
        except (ValueError, TypeError, KeyError, IndexError, RecursionError):
            await self._malformed(eio_sid)
        finally:
            self.oversize.discard(eio_sid)

    async def _binary_refused(self, eio_sid: str, reason: str) -> None:
        self.binary.pop(eio_sid, None)
        logger.warning("socket.io session closed: %s: eio=%s", reason, eio_sid)
        await self.eio.disconnect(eio_sid)

    async def _malformed(self, eio_sid: str) -> None:
        if eio_sid not in self.environ:  # the session already ended (a packet read before)
            return
        count = self.malformed.get(eio_sid, 0) + 1
        self.malformed[eio_sid] = count
        if count == 1:
            logger.warning("malformed socket.io packet dropped: eio=%s", eio_sid)
        if count >= MALFORMED_LIMIT:
            self.malformed.pop(eio_sid, None)
            await self.eio.disconnect(eio_sid)


class SocketIOTransport:
    """The six-method contract for one namespace of a python-socketio server."""

    name = NAME

    def __init__(self, sio: GatewayServer, namespace: str) -> None:
        self.sio = sio
        self.namespace = namespace
        self.greeting: dict[str, asyncio.Task] = {}

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        """One event to one connection, encoded and handed to its Engine.IO session.
        python-socketio's `emit(to=sid)` treats the sid as a room: a copy of the room, a task
        per recipient and `asyncio.wait` on it, for one socket (three times per greeting)."""
        eio_sid = self.sio.manager.eio_sid_from_sid(conn_id, self.namespace)
        if eio_sid is None:  # gone (or never connected): nothing to send to, as with emit
            return
        pkt = self.sio.packet_class(packet.EVENT, namespace=self.namespace, data=[name, payload])
        await self.sio._send_packet(eio_sid, pkt)

    async def fanout(
        self, target: str, name: str, payload: Any, *, only: frozenset[str] | None, skip: frozenset[str]
    ) -> int:
        """Encode the packet once and hand it to each local socket in turn.

        python-socketio's room emit starts one task per recipient; measured on a 1,000-member
        group that task creation was ~40% of the fan-out CPU. A socket's `send_now` writes the
        packet at once when nothing is ahead of it and never waits for a slow reader (else it
        queues it), so awaiting each in turn is cheap (direct_socket.py).
        """
        recipients = [
            eio_sid
            for sid, eio_sid in self.sio.manager.members(self.namespace, target)
            if sid not in skip and (only is None or sid in only)
        ]
        if not recipients:
            return 0
        encoded = encode_packet(self.sio.packet_class, packet.EVENT, [name, payload], self.namespace)
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        sockets = self.sio.eio.sockets
        for eio_sid in recipients:
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            send = getattr(socket, "send_now", None) or socket.send  # DirectSocket: at once when idle
            for frame in frames:
                await send(frame)
        return len(recipients)

    async def close(self, conn_id: str, *, reconnect: bool = False) -> None:
        if not reconnect:
            await self.sio.disconnect(conn_id, namespace=self.namespace)
            return
        # A namespace DISCONNECT ("io server disconnect") and an Engine.IO CLOSE packet both tell
        # socket.io clients not to reconnect (python-socketio treats CLOSE like that; the JS
        # client does not). Losing the transport makes both reconnect. So the Engine.IO session
        # is closed without its CLOSE packet (python-engineio 4.15: `abort`; this runs the
        # disconnect handlers, so the hub forgets the connection), and only then does its queue
        # get the end marker, after what is queued (acks included): the websocket writer sends
        # those and closes the websocket; a waiting poll gets them, and the next poll, finding
        # the session closed, fails at once. In the other order a poll could arrive between the
        # two and wait for a ping timeout.
        eio_sid = self.sio.manager.eio_sid_from_sid(conn_id, self.namespace)
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        if socket is None or socket.closed:
            return
        await socket.close(wait=False, abort=True)
        await socket.queue.put(None)

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            await self.sio.enter_room(conn_id, group, namespace=self.namespace)

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            await self.sio.leave_room(conn_id, group, namespace=self.namespace)

    def is_open(self, conn_id: str) -> bool:
        return self.sio.manager.is_connected(conn_id, self.namespace)

    # --- from python-socketio to the hub ------------------------------------------------------

    def bind(self, hub: Hub) -> None:
        """Register this namespace's handlers: connect, disconnect, and every event."""
        namespace, sio = self.namespace, self.sio

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            """Called when a client opens the namespace: authenticate and greet it."""
            handshake = Handshake(
                auth=auth,
                headers=_headers(environ),
                query=query_dict(environ.get("QUERY_STRING", "")),
                transport=NAME,
                remote=environ.get("REMOTE_ADDR"),
                namespace=namespace,
            )
            admission = await hub.connect(sid, handshake)
            if not admission.accepted:
                error = admission.error
                raise exceptions.ConnectionRefusedError(*(error if isinstance(error, tuple) else (error,)))
            if sio.always_connect:  # CONNECT is already out: greet now, before any event
                await hub.greet(sid)
            else:  # CONNECT goes out when this returns: greet after it, before any event
                self.greeting[sid] = asyncio.get_running_loop().create_task(
                    self._greet_when_connected(hub, sid)
                )

        async def disconnect(sid: str, reason: Any = None) -> None:
            """Called when a client's connection ended."""
            task = self.greeting.pop(sid, None)
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
            await hub.forget(sid)

        async def event(sid: str, eio_sid: str, name: str, args: list) -> list | None:
            """Called for every client event, with all its arguments: the ack's arguments."""
            task = self.greeting.pop(sid, None)
            if task is not None:
                await task
            return await hub.handle(sid, name, args, oversize=eio_sid in sio.oversize)

        async def any_event(name: str, sid: str, *args: Any) -> Any:
            """The same, called by python-socketio (`GatewayServer._text_event` calls `event`)."""
            ack = await event(sid, sio.manager.eio_sid_from_sid(sid, namespace), name, list(args))
            return None if ack is None else tuple(ack)

        sio.on("connect", connect, namespace=namespace)
        sio.on("disconnect", disconnect, namespace=namespace)
        sio.on_events(namespace, any_event, event, hub.lane)

    async def _greet_when_connected(self, hub: Hub, sid: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_WAIT_SECONDS
        while not self.sio.manager.is_connected(sid, self.namespace):
            if loop.time() > deadline or not self.sio.manager.is_pre_connected(sid, self.namespace):
                return  # gone before CONNECT went out: the disconnect handler forgets it
            await asyncio.sleep(0.001)
        await hub.greet(sid)
