"""Pipelined sends: a connection's next send starts while its earlier sends wait for their batch.

A connection's events are handled one at a time, in order: the transport reads the next one once
the last one is answered. For a send most of that time is its batch's wait for PostgreSQL, so a
connection had at most one send in the batcher, and at direct saturation (100 senders, 10 sends
in flight each) the batches held one send per sender, 37 and 63 in turn, each waiting ~20 ms for
the other (bench/README.md, session 6).

A protocol names the events it lets run ahead (`Protocol.pipelined`): sends whose handler checks
its payload, calls `actions.send` and answers with what that returns. The transport runs such an
event in a task of its own (`run`) and reads the next event once this one is queued in the
batcher (`parked`, called by `actions.send`) or done, whichever comes first. For the client,
nothing changes:

- **Effects in order.** The sends are queued in the order they were read, and the batcher stores
  and answers them in queue order (gateway/batching.py). Any other event of the connection waits
  until every pipelined event before it has answered (`drained`), so it acts after all of them.
- **Answers in order.** A pipelined event sends its answer (emits, then the ack) only after the one
  before it has sent its own (`turn`): a send refused at once does not overtake an earlier one
  still waiting for its batch.
- **Bounded.** At most CHAT SEND_PIPELINE events of one connection are in flight; the reader waits
  for the oldest to answer before it reads more (1: no pipelining).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

__all__ = ["Lane", "drained", "parked", "run", "turn"]


class _Entry:
    """One pipelined event: `released` lets the reader go on (parked or done); `answered`: its
    answer is out, and `waiting` the future of those who wait for that (made only when one
    does: the next event usually finds it answered); `previous`: the entry before it; `task`:
    the task it runs in (held here: the lane holds its entries)."""

    __slots__ = ("released", "answered", "waiting", "previous", "task")

    def __init__(self, released: asyncio.Future, previous: _Entry | None) -> None:
        self.released = released
        self.answered = False
        self.waiting: asyncio.Future | None = None
        self.previous = previous
        self.task: asyncio.Task | None = None

    async def wait_answered(self) -> None:
        if self.answered:
            return
        if self.waiting is None:
            self.waiting = self.released.get_loop().create_future()
        # Shielded: a waiter cancelled must not cancel what the others wait for.
        await asyncio.shield(self.waiting)

    def answer(self) -> None:
        self.answered = True
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(None)


# The entry of the pipelined event the current task runs (set in that task's own context).
_current: ContextVar[_Entry | None] = ContextVar("gateway_lane_entry", default=None)


class Lane:
    """A connection's pipelined events in flight, oldest first (made by the hub on first use)."""

    __slots__ = ("entries", "limit")

    def __init__(self, limit: int) -> None:
        self.entries: deque[_Entry] = deque()
        self.limit = limit  # CHAT SEND_PIPELINE


async def run(lane: Lane, event: Callable[[], Awaitable[None]]) -> None:
    """Run `event()` (the handler, then the ack) as the lane's newest entry, in a task of its own;
    return once it is queued in the batcher or done."""
    while len(lane.entries) >= lane.limit:
        await lane.entries[0].wait_answered()
    loop = asyncio.get_running_loop()
    entry = _Entry(loop.create_future(), lane.entries[-1] if lane.entries else None)
    lane.entries.append(entry)
    entry.task = loop.create_task(_entry(lane, entry, event))
    await entry.released


async def _entry(lane: Lane, entry: _Entry, event: Callable[[], Awaitable[None]]) -> None:
    _current.set(entry)  # this task's own context: `parked` and `turn` find it
    try:
        await event()
    finally:
        if not entry.released.done():
            entry.released.set_result(None)
        try:
            # An event that failed before its `turn` still ends after the one before it.
            await turn()
        finally:
            entry.previous = entry.task = None  # no chain of answered entries kept alive
            entry.answer()
            lane.entries.remove(entry)  # the oldest, as entries answer in order


def parked() -> None:
    """Called once the current event's send is queued in the batcher: its reader may go on."""
    entry = _current.get()
    if entry is not None and not entry.released.done():
        entry.released.set_result(None)


async def turn() -> None:
    """Before the current event answers: wait until the pipelined event before it has answered.
    Returns at once for an event that is not pipelined, or whose predecessor has answered."""
    entry = _current.get()
    if entry is not None and entry.previous is not None:
        await entry.previous.wait_answered()


async def drained(lane: Lane | None) -> None:
    """Before an event that is not pipelined: wait until every pipelined event of the lane has
    answered. Returns at once from inside a pipelined event (it is ordered by `turn`)."""
    if lane is None or _current.get() is not None:
        return
    while lane.entries:
        await lane.entries[-1].wait_answered()
