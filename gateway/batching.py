"""Group the message sends of all connections of this process into few database transactions.

While one batch is being written (in the database thread), new sends queue up; the moment it is
done, the next batch takes everything queued (up to a limit). An idle server writes each send at
once, alone; a busy one pays one commit and a handful of statements per batch instead of per
message. Each connection still handles its own events one at a time, so its sends stay in order.
"""

import asyncio
import logging
import time
from collections import deque

from django.conf import settings
from django.db import InterfaceError, OperationalError

from chatproject.ops import metrics
from messaging.services import SendRequest, SendResult, message_send_many

from .sync import call

logger = logging.getLogger(__name__)


class SendBatcher:
    def __init__(self) -> None:
        self._queue: deque[tuple[SendRequest, asyncio.Future]] = deque()
        self._writing = False  # a writer task is running
        self.stats = {"batches": 0, "messages": 0, "largest": 0}

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
        if not self._writing:
            self._writing = True
            asyncio.get_running_loop().create_task(self._write())
        return await future

    async def _write_batch(self, batch: list[tuple[SendRequest, asyncio.Future]]) -> list[SendResult]:
        """Write one batch; when the database connection was lost under it, once more on a
        fresh connection. The batch is one transaction, rolled back with the lost connection,
        so nothing of it was stored (sends with a client message id are idempotent anyway)."""
        requests = [request for request, _ in batch]
        try:
            return await call(message_send_many, requests=requests)
        except (OperationalError, InterfaceError):
            logger.warning("send batch of %d: database connection lost; retrying once", len(batch))
            return await call(message_send_many, requests=requests)

    async def _write(self) -> None:
        try:
            limit = settings.CHAT["SEND_BATCH_MAX"]
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), limit))]
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
                    continue
                metrics.db_batch_observed(len(batch), time.monotonic() - started)
                metrics.messages_stored(sum(1 for r in results if r.error is None and r.created))
                for (_request, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writing = False


send_batcher = SendBatcher()
