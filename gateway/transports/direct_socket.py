"""Engine.IO 4 sessions that write a packet to their websocket at once when nothing is ahead of it.

python-engineio (4.15, pinned) queues every packet of a session, and one writer task per session
takes packets off that queue and writes them to the websocket. Every packet sent to an idle
session wakes its writer: a queue waiter resolved, then the writer's `asyncio.wait_for`, which on
Python 3.11 creates a Task per wake-up. In a group fan-out that is one task wake-up per recipient
per message: the bench's group scenario put 45% of the product's event-loop samples in
`Queue.put` (waking the writer) and the writer's `poll` (issue 19, bench/README.md).

`DirectSocket.send_now` (what a fan-out calls: `SocketIOTransport.fanout`) writes the packet to
the websocket in the caller's own task when that keeps
the session's order: the session runs on its websocket, its writer is parked on an empty queue
(so it holds nothing it has not written) and no other direct write is under way. Otherwise the
packet is queued as before: long polling, an upgrade in progress, a backlog, or a direct write
still under way; the writer then waits for that write to end before it writes what was queued
behind it. A failed direct write ends the writer the way python-engineio's own writer ends on a
failed write (the websocket is closed).

A direct write never makes the caller wait: if the ASGI server suspends it (it paused writing to
a client that reads slowly), the rest of that write goes on in a task of its own and `send`
returns, as it returns after queueing. A fan-out loop calls `send` for every recipient: one slow
reader must not hold up the others. (`run_eagerly`: what Python 3.12's eager tasks do.)

Built on `LeanSocket` (engine.py): its writer waits on the queue in its own task (a packet a
`put` wakes it for stays queued until that task runs, so `send` never sees an empty queue with a
packet in hand), and pings go through the queue, so the writer's wait never times out on a
healthy session whose other packets all went out directly. The direct-write state lives in the
session's `SendQueue` (a slot), not on the socket: the socket's one spare attribute is
LeanSocket's ping timer, and a second costs ~660 bytes per connection.

Adds `send_now` beside python-engineio 4.15's `AsyncSocket.send` (pinned), overrides its
`AsyncSocket.receive` for MESSAGE packets (straight to the message handler) and wraps LeanSocket's
`_poll` and `_websocket_handler`; `GatewayServer`'s Engine.IO server gives each new session this class.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any

from engineio import packet

from .eager import run_eagerly
from .engine import EngineServer, LeanSocket


class _Direct:
    """A websocket session's direct-write state (slotted; in its queue's `direct` slot)."""

    __slots__ = ("ws", "parked", "writing", "resume", "rest")

    def __init__(self, ws: Any) -> None:
        self.ws = ws  # the websocket, while this session's handler runs on it
        self.parked = False  # the websocket writer waits on an empty queue, holding nothing
        self.writing = False  # a direct write is under way (it may be suspended)
        self.resume: asyncio.Future | None = None  # the writer waits on it for that write to end
        self.rest: asyncio.Task | None = None  # a suspended direct write, going on by itself


# Whether an Engine.IO event handler is a coroutine function, per handler (python-engineio asks
# `inspect` again for every packet): a server has a handful of handlers for its whole life.
_is_coroutine_handler = functools.lru_cache(maxsize=32)(inspect.iscoroutinefunction)


class DirectSocket(LeanSocket):
    async def receive(self, pkt: Any) -> None:
        """A packet from the client: python-engineio's (4.15, pinned), except that a MESSAGE
        goes straight to the server's coroutine `message` handler (python-socketio's), as
        python-engineio's `_trigger_event("message", ...)` calls it when `async_handlers` is off
        (python-socketio turns it off for its Engine.IO server): a CancelledError ends it with
        no error, anything else it raises is logged as python-engineio logs it. Three coroutine
        layers, a closure and an `inspect` call fewer for every client event (issue 19). Other
        packets, a sync handler, `async_handlers` on, or info logging on (python-engineio logs
        every packet then) go python-engineio's way."""
        server = self.server
        handler = server.handlers.get("message")
        if (
            pkt.packet_type != packet.MESSAGE
            or handler is None
            or server.async_handlers
            or not _is_coroutine_handler(handler)
            or server.logger.isEnabledFor(logging.INFO)
        ):
            await super().receive(pkt)
            return
        try:
            await handler(self.sid, pkt.data)
        except asyncio.CancelledError:  # as python-engineio's handler wrapper takes it
            pass
        except BaseException:  # as python-engineio's bare `except:` logs it (the session goes on)
            server.logger.exception("message async handler error")

    async def send_now(self, pkt: Any) -> None:
        """Send a packet of a fan-out to the client: written now if nothing is ahead of it, else
        queued. `send` (acks, greetings, answers) keeps python-engineio's queue: written at once
        too, the direct messages of scenario 1 cost 417-588 us of server CPU per message against
        373-461 queued (quick direct and twoproc, alternating, two runs each, quiet machine),
        where a fan-out gains (group: 35-38 -> 19 us per delivery)."""
        if not await self.check_ping_timeout():
            return
        queue = self.queue
        direct = queue.direct
        if direct is not None and direct.parked and not direct.writing and queue.empty():
            direct.writing = True
            direct.rest = run_eagerly(self._write_now(direct, pkt))
        else:
            await queue.put(pkt)
        if self.server.logger.isEnabledFor(logging.INFO):  # python-engineio's line
            self.server.logger.info(
                "%s: Sending packet %s data %s",
                self.sid,
                packet.packet_names[pkt.packet_type],
                pkt.data if not isinstance(pkt.data, bytes) else "<binary>",
            )

    async def _write_now(self, direct: _Direct, pkt: Any) -> None:
        try:
            await direct.ws.send(pkt.encode())
        except Exception:  # the websocket is gone: end the writer, which closes it
            direct.parked = False
            self.queue.direct = None
            self.queue.put_nowait(None)
        finally:
            direct.writing = False
            direct.rest = None
            resume = direct.resume
            if resume is not None:
                direct.resume = None
                if not resume.done():
                    resume.set_result(None)

    async def _poll(self, *, timed: bool) -> list:
        """LeanSocket's, marking the websocket writer parked while it waits, and holding back
        what it took while a direct write is under way (that write goes first)."""
        direct = self.queue.direct
        if direct is None or not self.upgraded or self.upgrading:
            return await super()._poll(timed=timed)
        direct.parked = True
        try:
            packets = await super()._poll(timed=timed)
        finally:
            direct.parked = False
        while direct.writing:  # a direct write suspended: what was queued goes after it
            direct.resume = asyncio.get_running_loop().create_future()
            await direct.resume
        return packets

    async def _websocket_handler(self, ws: Any) -> None:
        self.queue.direct = _Direct(ws)
        try:
            await super()._websocket_handler(ws)
        finally:
            self.queue.direct = None


class DirectEngineServer(EngineServer):
    """The gateway's Engine.IO 4 server: lean sessions that write directly when they can."""

    socket_class = DirectSocket
