"""python-engineio's server and session with less held per idle connection.

Measured in the server after the bench's idle ramp (gc objects and tracemalloc per connection),
python-engineio 4.15 holds, for each websocket session: an `asyncio.Queue` (four deques of 760
bytes), five tasks (uvicorn's, the websocket writer, a task per `asyncio.wait_for` of the
writer's queue read, one per websocket read, and one sleeping until the next ping), and for each
task its coroutine, context, weak reference and `wait_for`'s waiter, callback and timer. Here:

- the queue is a `SendQueue` (send_queue.py), through python-engineio's own hook `create_queue`;
- a session that opens on the websocket reads it in uvicorn's task and writes it from one writer
  task, each wait bounded by `asyncio.timeout` (no task per wait), and the next ping is a timer
  of the event loop, not a sleeping task. Two tasks per connection instead of five.

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
import time
from typing import Any

import engineio
from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket

from .send_queue import SendQueue


class LeanSocket(AsyncSocket):
    """An Engine.IO 4 session (python-engineio's), with the waits above."""

    _ping_timer: asyncio.TimerHandle | None = None

    async def poll(self) -> list[packet.Packet]:
        """Wait for packets to send to the client (the websocket writer, or a long poll)."""
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
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
        writer = asyncio.ensure_future(self._write(ws))
        timeout = self.server.ping_interval + self.server.ping_timeout
        limit = self.server.max_http_buffer_size
        while True:
            try:
                async with asyncio.timeout(timeout):
                    data = await ws.wait()
            except (Exception, asyncio.CancelledError):  # closed, timed out, or cancelled
                break
            if data is None or len(data) > limit:  # closed by the client, or too large
                break
            pkt = packet.Packet(encoded_packet=data)
            try:
                await self.receive(pkt)
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                self.server.logger.info("Receive error -- socket is closed")
                break
            except Exception:  # logged (as python-engineio does), and the session goes on
                self.server.logger.exception("Unknown receive error")
        await self.queue.put(None)  # the writer sends what is queued, then closes the websocket
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _write(self, ws: Any) -> None:
        while True:
            try:
                packets = await self.poll()
            except exceptions.QueueEmpty:
                break
            if not packets:  # the end marker: the session is closing
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except (Exception, asyncio.CancelledError):
                break
        await ws.close()


class EngineServer(engineio.AsyncServer):
    """python-engineio's server whose sessions are `LeanSocket`s with a `SendQueue`."""

    socket_class: type[LeanSocket] = LeanSocket  # or a subclass (direct_socket.py)

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
