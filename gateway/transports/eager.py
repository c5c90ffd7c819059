"""Run a coroutine in the caller's task until it first suspends (Python 3.12's eager tasks, on
3.11): the transports' direct websocket writes, which almost never suspend, cost no task and no
loop iteration, and the one that does (a slow reader) does not hold up its caller."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def run_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task | None:
    """Run `coro` in the caller's task until it ends (None) or first suspends; then the rest of
    it runs in a new task (returned: keep a reference). A write that does not suspend costs no
    task and no loop iteration."""
    try:
        suspended_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_run_rest(coro, suspended_on))


async def _run_rest(coro: Coroutine[Any, Any, None], suspended_on: Any) -> None:
    """Go on with a coroutine that suspended outside any task: wait for what it waits on (an
    asyncio future, or None for a bare yield), then resume it, until it ends."""
    try:
        while True:
            if suspended_on is None:
                await asyncio.sleep(0)
            else:
                suspended_on._asyncio_future_blocking = False  # as a Task does before waiting
                await asyncio.wait((suspended_on,))  # its outcome is the coroutine's to read
            try:
                suspended_on = coro.send(None)
            except StopIteration:
                return
    except asyncio.CancelledError:
        coro.close()
        raise
