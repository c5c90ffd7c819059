"""Engine.IO 4 sessions that write a packet to their websocket at once when nothing is ahead of it.

python-engineio (4.15, pinned) queues every packet of a session, and one writer task per session
takes packets off that queue and writes them to the websocket. Every packet sent to an idle
session wakes its writer: a queue waiter resolved, then the writer's `asyncio.wait_for`, which on
Python 3.11 creates a Task per wake-up. In a group fan-out that is one task wake-up per recipient
per message: the bench's group scenario put 45% of the product's event-loop samples in
`Queue.put` (waking the writer) and the writer's `poll` (issue 19, bench/README.md).

`DirectSocket.send` writes the packet to the websocket in the caller's own task when that keeps
the session's order: the session runs on its websocket, its writer is parked on an empty queue
(so it holds nothing it has not written) and no other direct write is under way. Otherwise the
packet is queued as before: long polling, an upgrade in progress, a backlog, or a direct write
suspended because the server paused writing to a slow reader; the writer then waits for that
write to end before it writes what was queued behind it. A failed direct write ends the writer
the way python-engineio's own writer ends on a failed write (the websocket is closed).

The websocket writer waits for its queue without a timeout: on a websocket the session's reader
already ends it after `ping_interval + ping_timeout` without a packet from the client, and then
ends the writer; a timeout of the writer's own would fire on a busy session whose packets all
went out directly. Long-polling requests keep python-engineio's `poll` and its timeout.

Overrides `AsyncSocket.send`, `poll` and `_websocket_handler` of python-engineio 4.15 (pinned);
`GatewayServer` gives each new session this class (gateway/transports/socketio.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engineio import async_socket, exceptions, packet


class DirectSocket(async_socket.AsyncSocket):
    # Class-level defaults: an instance gets its own values only once it runs on a websocket.
    direct_ws: Any = None  # the websocket, while this session's handler runs on it
    direct_parked = False  # the websocket writer waits on an empty queue, holding nothing
    direct_writing = False  # a direct write is under way (it may be suspended)
    direct_resume: asyncio.Future | None = None  # the writer waits on it for that write to end

    async def send(self, pkt: Any) -> None:
        """Send a packet to the client: written now if nothing is ahead of it, else queued."""
        if not await self.check_ping_timeout():
            return
        if not (self.direct_parked and not self.direct_writing and self.queue.empty()):
            await self.queue.put(pkt)
        else:
            await self._write_now(pkt)
        if self.server.logger.isEnabledFor(logging.INFO):  # python-engineio's line
            self.server.logger.info(
                "%s: Sending packet %s data %s",
                self.sid,
                packet.packet_names[pkt.packet_type],
                pkt.data if not isinstance(pkt.data, bytes) else "<binary>",
            )

    async def _write_now(self, pkt: Any) -> None:
        self.direct_writing = True
        try:
            await self.direct_ws.send(pkt.encode())
        except Exception:  # the websocket is gone: end the writer, which closes it
            self.direct_parked = False
            self.direct_ws = None
            self.queue.put_nowait(None)
        finally:
            self.direct_writing = False
            resume, self.direct_resume = self.direct_resume, None
            if resume is not None and not resume.done():
                resume.set_result(None)

    async def poll(self) -> list:
        """Wait for packets to send (python-engineio's, for long polling). The websocket writer
        waits in its own task, without a timeout: the packet a `put` wakes it for stays in the
        queue until this task runs, so `send` never sees an empty queue with a packet in hand."""
        if self.direct_ws is None or not self.upgraded or self.upgrading:
            return await super().poll()
        queue = self.queue
        self.direct_parked = True
        try:
            packets = [await queue.get()]
        except asyncio.CancelledError:
            raise exceptions.QueueEmpty() from None
        finally:
            self.direct_parked = False
        queue.task_done()
        if packets == [None]:
            return []
        while not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is None:
                queue.put_nowait(None)
                break
            packets.append(pkt)
        while self.direct_writing:  # a direct write suspended: what was queued goes after it
            self.direct_resume = asyncio.get_running_loop().create_future()
            await self.direct_resume
        return packets

    async def _websocket_handler(self, ws: Any) -> Any:
        self.direct_ws = ws
        try:
            return await super()._websocket_handler(ws)
        finally:
            self.direct_ws = None
            self.direct_parked = False
