"""Background tasks started and not awaited (timers' callbacks, a batch writer, a bus flush).

The event loop keeps only a weak reference to a task, so a task that nobody else holds can be
garbage-collected before it ends (the warning under `asyncio.create_task` in Python's docs).
`spawn` holds each such task until it is done."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_running: set[asyncio.Task] = set()


def spawn(coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task:
    """`loop.create_task(coro)` (the running loop by default), held until it is done."""
    task = (loop or asyncio.get_running_loop()).create_task(coro)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


def running() -> int:
    """How many spawned tasks have not ended yet (tests)."""
    return len(_running)
