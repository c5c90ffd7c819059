"""Group the message sends of all connections of this process into few database transactions.

While a batch is being written, new sends queue up; when a writer is free, the next batch takes
what is queued (up to a limit). An idle server writes each send at once, alone; a busy one pays
one round trip of writes and a handful of statements per batch instead of per message.

The batches are written on a writer thread with its own database connection
(`sync.call_write`). Up to CHAT SEND_WRITERS batches may be in the database at once (default 1:
with 2 the batches overlapped but were half as big, and cost as much CPU per message or more on
the bench machine). Batches in flight never share a conversation: a send whose conversation is
in a batch being written waits in the queue, and so does every later send into that
conversation, so sends into one conversation are stored, acked and published in the order they
were submitted (seq order), and two batches of one process never wait for each other's rows.
Each connection still handles its own events one at a time, so its sends stay in order too.
"""

import asyncio
import logging
import time
from collections import deque

from django.conf import settings
from django.db import InterfaceError, OperationalError

from chatproject.core.tasks import spawn
from chatproject.ops import metrics
from messaging.services import SendRequest, SendResult, message_send_many

from .sync import call_write

logger = logging.getLogger(__name__)

_Queued = tuple[SendRequest, asyncio.Future]


def _conversation_key(request: SendRequest) -> object:
    """What two batches in flight must not share: the conversation (its public id as sent; an
    id that is not a string is refused by the service, so it conflicts with nothing)."""
    return request.conversation_id if isinstance(request.conversation_id, str) else None


class SendBatcher:
    def __init__(self) -> None:
        self._queue: deque[_Queued] = deque()
        self._writing: list[set] = []  # the conversation keys of each batch in flight
        self.stats = {"batches": 0, "messages": 0, "largest": 0, "overlapped": 0}

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch being written."""
        return not self._writing and not self._queue

    async def wait_idle(self) -> None:
        """Return once every send submitted so far has its result (graceful drain). Polls: it
        runs once per process life, and an Event would tie the batcher to one event loop."""
        while not self.idle:  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.01)

    async def submit(self, request: SendRequest) -> SendResult:
        """Queue one send and wait for its own result (after its batch committed)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        self._start_writers()
        return await future

    def _start_writers(self) -> None:
        """Start a batch on every free writer, while there are sends a new batch may take."""
        writers = max(settings.CHAT["SEND_WRITERS"], 1)
        while self._queue and len(self._writing) < writers:
            batch, keys = self._take()
            if not batch:
                return  # every queued send waits for a conversation in flight
            if self._writing:
                self.stats["overlapped"] += 1
            self._writing.append(keys)
            spawn(self._write(batch, keys))

    def _take(self) -> tuple[list[_Queued], set]:
        """The next batch: queued sends in order, up to SEND_BATCH_MAX, skipping those whose
        conversation is in a batch in flight (they keep their place in the queue)."""
        limit = settings.CHAT["SEND_BATCH_MAX"]
        busy = set().union(*self._writing) if self._writing else set()
        batch: list[_Queued] = []
        keys: set = set()
        left: deque[_Queued] = deque()
        while self._queue and len(batch) < limit:
            item = self._queue.popleft()
            key = _conversation_key(item[0])
            if key is not None and key in busy:
                left.append(item)
                continue
            batch.append(item)
            if key is not None:
                keys.add(key)
        left.extend(self._queue)
        self._queue = left
        return batch, keys

    async def _write_batch(self, batch: list[_Queued]) -> list[SendResult]:
        """Write one batch; when the database connection was lost under it, once more on a
        fresh connection. The batch is one transaction, rolled back with the lost connection,
        so nothing of it was stored (sends with a client message id are idempotent anyway)."""
        requests = [request for request, _ in batch]
        try:
            return await call_write(message_send_many, requests=requests)
        except (OperationalError, InterfaceError):
            logger.warning("send batch of %d: database connection lost; retrying once", len(batch))
            return await call_write(message_send_many, requests=requests)

    async def _write(self, batch: list[_Queued], keys: set) -> None:
        try:
            self.stats["batches"] += 1
            self.stats["messages"] += len(batch)
            self.stats["largest"] = max(self.stats["largest"], len(batch))
            started = time.monotonic()
            try:
                results = await self._write_batch(batch)
            except Exception as exc:  # the database failed the whole batch
                logger.exception("send batch of %d failed", len(batch))
                for _request, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            metrics.db_batch_observed(len(batch), time.monotonic() - started)
            metrics.messages_stored(sum(1 for r in results if r.error is None and r.created))
            for (_request, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._writing.remove(keys)
            self._start_writers()


send_batcher = SendBatcher()
