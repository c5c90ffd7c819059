"""Group the message sends of all connections of this process into few database transactions.

While a batch is being written, new sends queue up; when a writer is free, it takes what is
queued (up to a limit) as its next batch. An idle server writes each send at once, alone; a busy
one pays one round trip of writes and a handful of statements per batch instead of per message.

The writers are threads of the batcher's own, each with its own database connection. A writer
takes its next batch itself, under the queue's lock, the moment its last one is written, and
hands the results to the senders' event loop (`call_soon_threadsafe`): the next batch goes to
PostgreSQL without waiting for the loop, which at saturation is busy with the sends and
deliveries of the batch just written (when the loop handed each batch to the thread, the writer
waited 4-10 ms for it after every batch: bench/README.md, session 5).

Up to CHAT SEND_WRITERS batches may be in the database at once (default 2; on the event loop
the second starts only behind a backlog, `EXTRA_WRITER_BACKLOG`; on SQLite one thread).
Batches in flight never share a conversation: a send whose conversation is in a batch being
written waits in the queue, and so does every later send into that conversation, so sends into
one conversation are stored, acked and published in the order they were submitted (seq order),
and two batches of one process never wait for each other's rows. A writer hands a batch's
results over before it frees the batch's conversations, and the loop runs what it is handed in
order, so a later batch's acks never overtake an earlier one's. A connection may have several
sends queued (gateway/lanes.py): a send is also kept out of a batch while an earlier send of its
connection (its `origin`) is in flight or waits, so a connection's sends are stored in the order
it sent them, whatever their conversations.
"""

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

from chatproject.core.tasks import spawn
from chatproject.ops import metrics
from messaging.services import SendRequest, SendResult, message_send_many

from . import writer as loop_writer
from .sync import settled

logger = logging.getLogger(__name__)

_Queued = tuple[SendRequest, asyncio.Future]
Write = Callable[[list[SendRequest]], list[SendResult]]
WriteAsync = Callable[[list[SendRequest]], Awaitable[list[SendResult]]]

# On the event loop, a writer beyond the first starts only while this many sends wait: under
# load two batches in flight keep the loop busy while one is in PostgreSQL (direct saturation,
# quick bench: 4,759 msgs/s with one writer at 88% of the core, 5,278 with two at 99%), but at a
# low rate they split the few queued sends into smaller batches that cost more each (at 1,000
# msgs/s: 640 against 747 us of CPU per message, p99 11.6 against 16.5 ms; bench/README.md,
# session 6).
EXTRA_WRITER_BACKLOG = 50

# A writer with nothing to write for this long ends (closing its database connection); the next
# send starts one again. Batchers made by tests do not keep threads waiting forever.
WRITER_IDLE_SECONDS = 60.0


def _keys(request: SendRequest) -> tuple:
    """What two batches in flight must not share: the conversation (its public id as sent; an
    id that is not a string is refused by the service, so it conflicts with nothing) and the
    connection the send came from (its `origin`: a connection may have several sends queued,
    gateway/lanes.py, and they are stored in the order it sent them)."""
    conversation = request.conversation_id if isinstance(request.conversation_id, str) else None
    return (conversation, None if request.origin is None else ("origin", request.origin))


def _store(requests: list[SendRequest]) -> list[SendResult]:
    return message_send_many(requests=requests)


class SendBatcher:
    """`write`: what a writer thread runs for a batch (the service, or a test's stand-in).
    `write_async`: what a writer on the event loop awaits; None: `gateway.writer.LoopWriter`s
    where the database allows it (`writer.usable()`), writer threads elsewhere."""

    def __init__(self, write: Write = _store, write_async: WriteAsync | None = None) -> None:
        self._write_batch = write
        self._write_async = write_async
        self._on_loop_default = write is _store and write_async is None
        self._loop_writers: list[loop_writer.LoopWriter] = []  # idle ones, each with its connection
        self._lock = threading.Condition()
        # Under the lock: the queue, the batches in flight, the writers and the counts below.
        self._queue: deque[_Queued] = deque()
        self._writing: list[set] = []  # the conversation keys of each batch in flight
        self._writers = 0  # threads alive
        self._tasks = 0  # writers on the event loop running
        self._unanswered = 0  # sends submitted whose result the loop has not been handed yet
        self.stats = {"batches": 0, "messages": 0, "largest": 0, "overlapped": 0}

    @property
    def idle(self) -> bool:
        """Every send submitted so far has its result."""
        return self._unanswered == 0

    async def wait_idle(self) -> None:
        """Return once every send submitted so far has its result (graceful drain). Polls: it
        runs once per process life, and an Event would tie the batcher to one event loop."""
        while not self.idle:  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.01)

    async def submit(self, request: SendRequest) -> SendResult:
        """Queue one send and wait for its own result (after its batch committed)."""
        return await self.enqueue(request)

    def enqueue(self, request: SendRequest) -> asyncio.Future:
        """Queue one send: the future of its own result (set after its batch committed)."""
        future = asyncio.get_running_loop().create_future()
        writers = max(settings.CHAT["SEND_WRITERS"], 1)
        with self._lock:
            self._queue.append((request, future))
            self._unanswered += 1
            if self._tasks >= writers or (self._tasks and len(self._queue) < EXTRA_WRITER_BACKLOG):
                # A writer on the event loop is running and takes it; another one starts only
                # behind a backlog. (Asking `usable` first, for every send, was 8% of the
                # loop's samples at direct saturation: Django's connection lookup.)
                return future
            if loop_writer.usable() if self._on_loop_default else self._write_async is not None:
                self._tasks += 1
                spawn(self._loop_writer())
            elif self._writers < (1 if connections[DEFAULT_DB_ALIAS].vendor == "sqlite" else writers):
                # SQLite writes one transaction at a time whatever the threads: one writer.
                self._writers += 1
                threading.Thread(target=self._writer, name=f"db-write-{self._writers}", daemon=True).start()
            else:
                self._lock.notify()
        return future

    def _take(self) -> tuple[list[_Queued], set]:
        """Under the lock: the next batch, queued sends in order, up to SEND_BATCH_MAX,
        skipping those whose conversation or connection is in a batch in flight, and every later
        send of a conversation or connection skipped (they keep their place)."""
        limit = settings.CHAT["SEND_BATCH_MAX"]
        if not self._writing and len(self._queue) <= limit:  # the common case: take everything
            batch, self._queue = list(self._queue), deque()
            keys = {key for request, _ in batch for key in _keys(request) if key is not None}
            return batch, keys
        busy = set().union(*self._writing)
        batch: list[_Queued] = []
        keys: set = set()
        left: deque[_Queued] = deque()
        while self._queue and len(batch) < limit:
            item = self._queue.popleft()
            mine = [key for key in _keys(item[0]) if key is not None]
            if any(key in busy for key in mine):
                left.append(item)
                busy.update(mine)  # what comes later of the same conversation or connection waits too
                continue
            batch.append(item)
            keys.update(mine)
        left.extend(self._queue)
        self._queue = left
        return batch, keys

    def _next_batch(self) -> tuple[list[_Queued], set] | None:
        """Under the lock, on a writer: wait for a batch it may take; None once the writer has
        waited WRITER_IDLE_SECONDS for one (it then ends)."""
        while True:
            if self._queue:
                batch, keys = self._take()
                if batch:
                    self._started(batch, keys)
                    return batch, keys
            # Nothing queued, or every queued send waits for a conversation in flight.
            if not self._lock.wait(WRITER_IDLE_SECONDS) and not self._queue:
                return None

    def _writer(self) -> None:
        try:
            while True:
                with self._lock:
                    taken = self._next_batch()
                    if taken is None:
                        # Under the lock that saw the queue empty: a send queued after this
                        # starts a writer again.
                        self._writers -= 1
                        return
                batch, keys = taken
                try:
                    self._hand_over(batch, *self._written(batch))
                finally:
                    self._release(keys)
        except BaseException:
            with self._lock:
                self._writers -= 1
            raise
        finally:
            connections.close_all()  # this thread's own

    async def _loop_writer(self) -> None:
        """A writer on the event loop: batches while the queue holds sends it may take."""
        if self._write_async is not None:
            write, connection = self._write_async, None
        else:
            connection = self._loop_writers.pop() if self._loop_writers else loop_writer.LoopWriter()
            write = connection.write
        try:
            while True:
                with self._lock:
                    taken = self._next_batch_now()
                    if taken is None:
                        self._tasks -= 1
                        return
                batch, keys = taken
                try:
                    results, error = await self._written_async(write, batch)
                    self._answer(
                        [(future, results[i] if results else None) for i, (_r, future) in enumerate(batch)],
                        error,
                    )
                finally:
                    self._release(keys)
        except BaseException:
            with self._lock:
                self._tasks -= 1
            raise
        finally:
            if connection is not None:
                self._loop_writers.append(connection)

    def _next_batch_now(self) -> tuple[list[_Queued], set] | None:
        """Under the lock, on the event loop: the next batch it may take, or None."""
        if not self._queue:
            return None
        batch, keys = self._take()
        if not batch:
            return None  # every queued send waits for a conversation in flight: its writer takes it
        self._started(batch, keys)
        return batch, keys

    def _release(self, keys: set) -> None:
        """A batch's results are handed over: its conversations may go in another batch."""
        with self._lock:
            self._writing.remove(keys)
            if self._queue:
                self._lock.notify_all()  # writer threads whose sends waited for these

    def _started(self, batch: list[_Queued], keys: set) -> None:
        if self._writing:
            self.stats["overlapped"] += 1
        self._writing.append(keys)
        self.stats["batches"] += 1
        self.stats["messages"] += len(batch)
        self.stats["largest"] = max(self.stats["largest"], len(batch))

    async def _written_async(
        self, write: WriteAsync, batch: list[_Queued]
    ) -> tuple[list[SendResult] | None, BaseException | None]:
        """`_written` on the event loop."""
        requests, started = [request for request, _ in batch], time.monotonic()
        try:
            try:
                results = await write(requests)
            except (OperationalError, InterfaceError):
                _lost(len(batch))
                results = await write(requests)
        except Exception as exc:
            return _failed(len(batch), exc)
        return _stored(len(batch), started, results)

    def _written(self, batch: list[_Queued]) -> tuple[list[SendResult] | None, BaseException | None]:
        """Write one batch; when the database connection was lost under it, once more on a
        fresh connection. The batch is one transaction, rolled back with the lost connection,
        so nothing of it was stored (sends with a client message id are idempotent anyway).
        Returns (results, None), or (None, the error that failed the whole batch)."""
        requests, started = [request for request, _ in batch], time.monotonic()
        try:
            try:
                results = settled(self._write_batch, requests)
            except (OperationalError, InterfaceError):
                _lost(len(batch))
                results = settled(self._write_batch, requests)
        except Exception as exc:
            return _failed(len(batch), exc)
        return _stored(len(batch), started, results)

    def _hand_over(
        self, batch: list[_Queued], results: list[SendResult] | None, error: BaseException | None
    ) -> None:
        """On the writer: give each sender its result, on its own event loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[int]] = {}
        for i, (_request, future) in enumerate(batch):
            by_loop.setdefault(future.get_loop(), []).append(i)
        for loop, indexes in by_loop.items():
            answer = [(batch[i][1], results[i] if results is not None else None) for i in indexes]
            try:
                loop.call_soon_threadsafe(self._answer, answer, error)
            except RuntimeError:  # that loop is closed: nobody waits for these any more
                with self._lock:
                    self._unanswered -= len(answer)

    def _answer(
        self, answer: list[tuple[asyncio.Future, SendResult | None]], error: BaseException | None
    ) -> None:
        """On the senders' loop."""
        with self._lock:
            self._unanswered -= len(answer)
        for future, result in answer:
            if future.done():  # its sender was cancelled (its connection closed)
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)


def _lost(size: int) -> None:
    logger.warning("send batch of %d: database connection lost; retrying once", size)


def _failed(size: int, error: Exception) -> tuple[None, Exception]:
    """The database failed the whole batch: every sender of it gets `error`."""
    logger.exception("send batch of %d failed", size, exc_info=error)
    return None, error


def _stored(size: int, started: float, results: list[SendResult]) -> tuple[list[SendResult], None]:
    metrics.db_batch_observed(size, time.monotonic() - started)
    metrics.messages_stored(sum(1 for r in results if r.error is None and r.created))
    return results, None


send_batcher = SendBatcher()
