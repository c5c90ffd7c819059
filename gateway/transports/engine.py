"""python-engineio's server and session with less held per idle connection.

Measured in the server after the bench's idle ramp (gc objects and tracemalloc per connection),
python-engineio 4.15 holds, for each websocket session: an `asyncio.Queue` (four deques of 760
bytes), five tasks (uvicorn's, the websocket writer, a task per `asyncio.wait_for` of the
writer's queue read, one per websocket read, and one sleeping until the next ping), and for each
task its coroutine, context, weak reference and `wait_for`'s waiter, callback and timer. Here:

- the queue is a `SendQueue` (send_queue.py), through python-engineio's own hook `create_queue`;
- a session that opens on the websocket reads it in uvicorn's task and writes it from one writer
  task, both waits bounded by one timer of the event loop for the session's life (`_Deadline`:
  no task, and no timer, per wait), and the next ping is a timer of the event loop, not a
  sleeping task. Two tasks per connection instead of five.

Same behaviour as python-engineio's: the same timeouts (a read or a write waiting for longer than
ping interval + ping timeout ends the session), the same ping schedule (the next ping one ping
interval after the client's pong), the same ending (the writer sends what is queued, then closes
the websocket; the session is closed with reason "transport close"). A session that opens on
long-polling and upgrades keeps python-engineio's own upgrade path (with the lean queue and
poll). `AsyncSocket.poll`, `schedule_ping` and `_websocket_handler` are overridden (4.15.1,
pinned); the live tests of every Engine.IO 4 protocol run through them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import engineio
from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket

from .send_queue import SendQueue


class _Deadline:
    """The waits of one websocket session (the read loop's for the next frame, the writer's for
    the next packets), each ended past ping interval + ping timeout as python-engineio ends them,
    by one timer of the event loop for the session's life instead of an `asyncio.timeout` per
    wait. A timeout per wait made a timer and cancelled it for every frame read and every wake
    of the writer: ~5% of the event loop's samples for direct messages (issue 19, bench/README.md).

    The waits note when they began; the timer, when it fires, ends a wait older than the limit
    (a read: its task is cancelled, as the timeout did; the writer: its queue gets the end
    marker, so it closes the websocket, as it did when its timed wait ran out) and otherwise
    fires again when the oldest wait under way would reach it."""

    __slots__ = ("loop", "seconds", "queue", "reader", "reading", "writing", "expired", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float, queue: Any) -> None:
        self.loop = loop
        self.seconds = seconds
        self.queue = queue
        self.reader = asyncio.current_task()
        self.reading: float | None = None  # when the read under way began (loop time)
        self.writing: float | None = None  # when the writer began to wait for packets
        self.expired = False  # the read was cancelled for its age
        self.timer: asyncio.TimerHandle | None = loop.call_later(seconds, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        if self.reading is not None and now - self.reading >= self.seconds:
            self.expired = True
            self.timer = None
            self.reader.cancel()
            return
        if self.writing is not None and now - self.writing >= self.seconds:
            self.writing = None
            self.queue.put_nowait(None)  # the writer ends and closes the websocket
        due = now + self.seconds
        for began in (self.reading, self.writing):
            if began is not None:
                due = min(due, began + self.seconds)
        self.timer = self.loop.call_at(due, self._check)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class LeanSocket(AsyncSocket):
    """An Engine.IO 4 session (python-engineio's), with the waits above."""

    _ping_timer: asyncio.TimerHandle | None = None

    async def poll(self) -> list[packet.Packet]:
        """Wait for packets to send to the client (a long poll), at most ping interval + ping
        timeout."""
        return await self._poll(timed=True)

    async def _poll(self, *, timed: bool) -> list[packet.Packet]:
        """The packets queued for the client, waiting for the first. `timed`: the wait is bounded
        here; the websocket writer's is bounded by its session's `_Deadline` instead."""
        try:
            if timed:
                async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                    packets = [await self.queue.get()]
            else:
                packets = [await self.queue.get()]
            self.queue.task_done()
        except (TimeoutError, asyncio.CancelledError):
            raise exceptions.QueueEmpty() from None
        if packets == [None]:
            return []
        while True:
            try:
                pkt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self.queue.task_done()
            if pkt is None:  # the end marker stays for the next poll
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets

    def schedule_ping(self) -> None:
        """Called at the connect and on every PONG: the next PING one ping interval later, unless
        one is already due (`last_ping` is None between a PONG and the next PING)."""
        if self.last_ping:
            self.last_ping = None
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(self.server.ping_interval, self._ping_due)

    def _ping_due(self) -> None:
        self._ping_timer = None
        if self.closing or self.closed:
            return
        self.last_ping = time.time()
        # What `send` does: the ping timeout cannot have passed (last_ping is now).
        self.queue.put_nowait(packet.Packet(packet.PING))

    async def _websocket_handler(self, ws: Any) -> None:
        """The websocket of this session, read here (uvicorn's task) and written by one writer
        task. An upgrade from long-polling goes through python-engineio's own handler."""
        if self.connected:
            await super()._websocket_handler(ws)
            return
        self.connected = True
        self.upgraded = True
        loop = asyncio.get_running_loop()
        deadline = _Deadline(loop, self.server.ping_interval + self.server.ping_timeout, self.queue)
        writer = asyncio.ensure_future(self._write(ws, deadline))
        limit = self.server.max_http_buffer_size
        while True:
            deadline.reading = loop.time()
            try:
                data = await ws.wait()
            except (Exception, asyncio.CancelledError):  # closed, timed out, or cancelled
                if deadline.expired:
                    asyncio.current_task().uncancel()  # the deadline's own cancel: a timeout
                break
            deadline.reading = None
            if data is None or len(data) > limit:  # closed by the client, or too large
                break
            try:
                await self.receive(decoded(data))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                self.server.logger.info("Receive error -- socket is closed")
                break
            except Exception:  # logged (as python-engineio does), and the session goes on
                self.server.logger.exception("Unknown receive error")
            # Nothing of the last frame is held while the next read waits: an idle connection's
            # last frame is its namespace CONNECT (with its token), for the connection's life.
            data = None
        deadline.reading = None
        await self.queue.put(None)  # the writer sends what is queued, then closes the websocket
        await writer
        deadline.stop()
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _write(self, ws: Any, deadline: _Deadline) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline.writing = loop.time()
            try:
                packets = await self._poll(timed=False)
            except exceptions.QueueEmpty:
                break
            finally:
                deadline.writing = None
            if not packets:  # the end marker: the session is closing
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except (Exception, asyncio.CancelledError):
                break
            packets = pkt = None  # what was sent is not held while the writer waits for more
        await ws.close()


def decoded(data: str | bytes) -> packet.Packet:
    """The Engine.IO packet of a websocket frame, as python-engineio's `Packet.decode` makes it
    (4.15, pinned). A text MESSAGE whose payload starts with a digit, a Socket.IO packet (every
    client event), is made without `decode`, which raises and catches a ValueError for each of
    them to refuse an integer payload and keeps the text (issue 19, session 6: ~5% of
    bench/inbound_cost.py's instructions)."""
    if type(data) is str and len(data) > 1 and data[0] == "4" and data[1].isnumeric():
        return packet.Packet(packet.MESSAGE, data[1:])
    return packet.Packet(encoded_packet=data)


class RequestBody:
    """A request's body as python-engineio reads it (`environ["wsgi.input"].read()`): the
    body of its first ASGI event, and of the events that follow while `more_body` is set."""

    __slots__ = ("event", "receive", "payload")

    def __init__(self, event: dict[str, Any], receive: Any) -> None:
        self.event = event
        self.receive = receive
        self.payload: bytes | None = None

    async def read(self, length: int | None = None) -> bytes:
        if self.payload is None and self.event["type"] == "http.request":
            self.payload = self.event.get("body") or b""
            while self.event.get("more_body"):
                self.event = await self.receive()
                if self.event["type"] == "http.request" and (length is None or len(self.payload) < length):
                    self.payload += self.event.get("body") or b""
        payload = self.payload or b""
        if length is None:
            self.payload = b""
            return payload
        self.payload = payload[length:]
        return payload[:length]


async def translate_request(scope: dict[str, Any], receive: Any, send: Any) -> dict[str, Any]:
    """python-engineio 4.15's ASGI `translate_request` (pinned): the WSGI-style environ of a
    request, after its first ASGI event; {} for any other event. Its body is a `RequestBody`."""
    event = await receive()
    if event["type"] not in ("http.request", "websocket.connect"):
        return {}
    raw_uri = scope["path"]
    query_string = ""
    if scope.get("query_string"):
        try:
            query_string = scope["query_string"].decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raw_uri += "?" + query_string
    environ = {
        "wsgi.input": RequestBody(event, receive),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.async": True,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": "asgi",
        "REQUEST_METHOD": scope.get("method", "GET"),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": query_string,
        "RAW_URI": raw_uri,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "0",
        "SERVER_NAME": "asgi",
        "SERVER_PORT": "0",
        "asgi.receive": receive,
        "asgi.send": send,
        "asgi.scope": scope,
    }
    for raw_name, raw_value in scope["headers"]:
        try:
            name = raw_name.upper().decode("utf-8")
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a header that cannot be decoded is skipped
        if name == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "CONTENT-LENGTH":
            environ["CONTENT_LENGTH"] = value
            continue
        key = "HTTP_" + name.replace("-", "_")
        if key in environ:
            value = f"{environ[key]},{value}"
        environ[key] = value
    environ["wsgi.url_scheme"] = environ.get("HTTP_X_FORWARDED_PROTO", "http")
    return environ


class EngineServer(engineio.AsyncServer):
    """python-engineio's server whose sessions are `LeanSocket`s with a `SendQueue`, and whose
    requests are translated by `translate_request` above."""

    socket_class: type[LeanSocket] = LeanSocket  # or a subclass (direct_socket.py)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.async_mode == "asgi":  # the other drivers translate their own frameworks' requests
            self._async = {**self._async, "translate_request": translate_request}

    def create_queue(self, *args: Any, **kwargs: Any) -> SendQueue:
        return SendQueue()

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            # python-engineio made the session (an AsyncSocket, it has no hook for the class)
            # and calls this before it schedules a ping or reads anything: same layout, so the
            # class can change here.
            socket = self.sockets.get(args[0])
            if type(socket) is AsyncSocket:
                socket.__class__ = self.socket_class
        return await super()._trigger_event(event, *args, **kwargs)
