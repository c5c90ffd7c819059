"""Graceful drain: what a server process does between SIGTERM and its exit.

Why not in `lifespan.shutdown`: on SIGTERM uvicorn 0.54 closes its listening sockets, sends every
open WebSocket a close (1012) at once, waits for HTTP requests in progress (Engine.IO long polls
among them) up to `--timeout-graceful-shutdown` (forever without it), and only then sends the
application `lifespan.shutdown`. By then every connection is gone, acks of sends in flight
included. So the drain runs first: `install` (called at lifespan startup, where uvicorn's own
SIGTERM handler is already in place) puts a handler in front of the server's, which runs the drain
and then hands the signal on; the server then shuts down as it always does.

The sequence (docs/operations.md, "Graceful drain"), bounded by CHAT["DRAIN_SECONDS"] in all:

1. /readyz answers 503 "draining": the load balancer stops sending new connections here;
2. the gateway refuses new Engine.IO sessions (HTTP 503 `server_draining`, a WebSocket closed
   before its handshake) and new /ws/ connections (closed before accept), and the hubs refuse a
   namespace connect with `server_draining`; REST requests are still served;
3. up to QUIESCE_SECONDS for the client events being handled to finish, so their acks go out;
4. every connection gets its protocol's `draining` events, then its transport is closed the way
   its clients reconnect from (`Transport.close(reconnect=True)`): socket.io clients reconnect,
   through the load balancer, to another process; a send whose ack did not make it out is resent
   by the client with its ClientMessageId, which the server deduplicates;
5. the send batcher writes what is queued (every submitted send commits or fails), and the bus
   publishes what those commits queued;
6. the hubs forget the closed connections (presence, bus subscriptions);
7. the signal goes on to the server (uvicorn stops; lifespan.shutdown stops presence and the bus).

A second SIGTERM during the drain hands over at once. With DRAIN_SECONDS 0 nothing is installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from django.conf import settings

from chatproject.bus import transport as bus
from chatproject.ops import health

from .batching import send_batcher

if TYPE_CHECKING:
    from .hub import Hub

logger = logging.getLogger(__name__)

# At most this long for events being handled to finish before connections are closed.
QUIESCE_SECONDS = 1.0


async def _until(done: Callable[[], bool], deadline: float) -> bool:
    loop = asyncio.get_running_loop()
    while not done():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def _bounded(work: Awaitable[object], deadline: float) -> bool:
    try:
        await asyncio.wait_for(work, max(deadline - asyncio.get_running_loop().time(), 0.001))
    except TimeoutError:
        return False
    return True


async def drain(hubs: list[Hub], seconds: float) -> dict[str, int | float]:
    """Steps 1 and 3 to 6 of the sequence above (the gateway does step 2 from `hub.draining`).
    Returns what it did, for the log and the tests."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + seconds
    health.mark_draining()
    for hub in hubs:
        hub.draining = True
    connections = sum(len(hub.connections) for hub in hubs)
    logger.warning("drain: started with %d connections, %.1f s", connections, seconds)
    quiet = await _until(
        lambda: all(hub.in_flight == 0 for hub in hubs), min(deadline, began + QUIESCE_SECONDS)
    )
    for hub in hubs:
        await hub.drain()
    written = await _bounded(send_batcher.wait_idle(), deadline)
    await _bounded(bus.flush(), deadline)
    await _until(lambda: not any(hub.connections for hub in hubs), deadline)
    report = {
        "connections": connections,
        "left": sum(len(hub.connections) for hub in hubs),
        "quiet": int(quiet),
        "batches_written": int(written),
        "seconds": round(loop.time() - began, 3),
    }
    logger.warning(
        "drain: done in %.2f s: %d connections closed, %d left, events quiet=%d, batches written=%d",
        report["seconds"],
        connections - report["left"],
        report["left"],
        report["quiet"],
        report["batches_written"],
    )
    return report


def install(run: Callable[[], Awaitable[object]]) -> bool:
    """Put a SIGTERM handler in front of the server's: the first SIGTERM runs `run()` (the
    drain) in the event loop, then calls the server's handler; a second one calls it at once.

    Only where a server installed a handler to hand over to (uvicorn installs its handlers with
    `signal.signal` before lifespan startup and restores the originals at exit): with the
    default disposition (tests, scripts) nothing is installed. Returns whether it was.
    """
    seconds = float(settings.CHAT["DRAIN_SECONDS"])
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return False
    loop = asyncio.get_running_loop()
    state: dict[str, asyncio.Task | None] = {"task": None}

    def hand_over() -> None:
        previous(signal.SIGTERM, None)

    async def drain_then_hand_over() -> None:
        try:
            await asyncio.wait_for(run(), seconds + 1)
        except Exception:
            logger.exception("drain failed; shutting down anyway")
        finally:
            hand_over()

    def start() -> None:
        # Said first, so a log that shows a drain also shows what started it: only this signal
        # does (a refused handshake, a cap or an error never do). The sender is not known here
        # (Python's handlers get no siginfo): `strace -f -e signal=SIGTERM -p <pid>` shows si_pid.
        if state["task"] is not None:  # a second SIGTERM: stop waiting
            logger.warning("drain: second SIGTERM received, shutting down now")
            hand_over()
            return
        logger.warning("drain: SIGTERM received")
        state["task"] = loop.create_task(drain_then_hand_over())

    def on_sigterm(signum: int, frame: object) -> None:
        # A signal handler runs between two bytecodes of the main thread, maybe inside the event
        # loop's own code: only schedule work from here.
        loop.call_soon_threadsafe(start)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True
