"""The outbound queue of one Engine.IO 4 session, smaller than `asyncio.Queue`.

python-engineio gives every session an `asyncio.Queue` (`AsyncServer.create_queue`): its packets
to send, taken by the websocket writer task or by a long-polling GET. An `asyncio.Queue` holds
four deques (items, getters, putters, and the one inside its `join` event), 760 bytes each on
CPython 3.11 before anything is queued: ~3.4 KiB per connection, most of it empty while the
connection is idle. This one holds a deque only while packets wait, a list of getters only while
one waits (the websocket writer, most of the time), and the `join` event only while someone
joins. Unbounded, like the queue python-engineio
makes; the part of `asyncio.Queue`'s interface python-engineio uses (`put`, `put_nowait`, `get`,
`get_nowait`, `task_done`, `join`, `empty`, `qsize`), with its semantics.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class SendQueue:
    __slots__ = ("_items", "_getters", "_unfinished", "_finished", "direct")

    def __init__(self) -> None:
        self._items: deque | None = None  # None: nothing queued
        self._getters: list[asyncio.Future] | None = None  # None: nobody waiting (usually one)
        self._unfinished = 0  # put and not yet task_done (what `join` waits for)
        self._finished: asyncio.Event | None = None  # made by `join`, set when _unfinished is 0
        # The session's direct-write state (direct_socket.py) while it runs on its websocket:
        # here, not on the socket, whose spare attribute slot LeanSocket's ping timer takes.
        self.direct: Any = None

    def qsize(self) -> int:
        return len(self._items) if self._items is not None else 0

    def empty(self) -> bool:
        return self._items is None

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._unfinished += 1
        if self._finished is not None:
            self._finished.clear()
        self._wake_getter()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if self._items is None:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while self._items is None:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = [getter]
            else:
                self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                self._forget_getter(getter)
                # Woken for an item and cancelled before taking it: the next getter takes it.
                if self._items is not None and not getter.cancelled():
                    self._wake_getter()
                raise
            self._forget_getter(getter)
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._finished is not None:
            self._finished.set()

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        if self._finished is None:
            self._finished = asyncio.Event()
        await self._finished.wait()

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not self._getters:
            self._getters = None

    def _forget_getter(self, getter: asyncio.Future) -> None:
        if self._getters is None:
            return
        try:
            self._getters.remove(getter)
        except ValueError:
            pass
        if not self._getters:
            self._getters = None
