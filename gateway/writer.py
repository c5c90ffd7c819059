"""The send batch on the event loop: `messaging.services.send_steps` driven over an asynchronous
psycopg connection of the batcher's own (CHAT SEND_ON_LOOP, PostgreSQL).

The steps are the ones the sync driver runs (`messaging.services.drive`): the same statements
(one for a batch of plain sends, two otherwise), the same Python between them. Only the I/O differs: a `SendQuery` is awaited on this
connection while the loop serves its sockets, where a writer thread blocked on it and then had to
take the GIL back from the busy event loop at each of its round trips (up to the switch
interval, 5 ms, each time; at direct saturation a batch's wall was 5-7 times its CPU: bench/
README.md, session 5). A `Call` (the ORM parts: replies, retries, a lost race) goes to the
database thread; a `Publish` goes to the bus at once, the batch being committed when its query
returned. A batch with an upload to lock needs a transaction around ORM steps: it goes to the
database thread whole (`message_send_many`).

The connection is opened as Django opens its own (`get_connection_params`: the same database,
options and type adapters, the session's time zone set to UTC), in autocommit, with client-side
binding (the write and its members read go as one simple-protocol query, as on Django's
connection). CHAT SEND_PREPARED: the statements are prepared on it once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from chatproject.bus import publish_many_committed
from messaging.services import (
    Call,
    SendQuery,
    SendRequest,
    SendResult,
    Stepping,
    Steps,
    message_send_many,
    send_statements_prepared,
    send_steps,
)

from . import pgasync
from .sync import call

# A prepared statement's generic plan is made once per connection, from the table sizes and
# statistics of that moment, and kept until they are gathered again (ANALYZE). Made while the
# message table is (nearly) empty, as on a new install or a new bench database, the one
# statement's idempotency lookup went through the `(conversation, rev)` index, filtering every
# message of the conversation, instead of the idempotency index (a tie at zero rows): O(history)
# a send for as long as the connection lived, where autovacuum is off or has not run yet (EXPLAIN
# ANALYZE after 50,000 messages: 1.2-1.4 ms against 0.5 ms a batch of two). The statements are
# prepared again once this connection has written this many messages, then ten times as many,
# and so on: plans follow the tables' growth by orders of magnitude, for a few plannings in all.
REPLAN_FIRST = 1_000


def usable() -> bool:
    """Whether send batches may run on the event loop: PostgreSQL, CHAT SEND_ON_LOOP, and a
    session this driver sets up as Django would (`pgasync.SESSION_OPTIONS`)."""
    return pgasync.usable("SEND_ON_LOOP")


class LoopWriter:
    """One asynchronous connection and the driver over it; one batch at a time."""

    def __init__(self) -> None:
        self._connection: psycopg.AsyncConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Django's wrapper of the default database, for its parameters and its error wrapping
        # only (no query runs on it here): looked up once, not per query (asgiref's `Local`
        # behind `connections[...]` costs a lookup and a getpid system call every time).
        self._db = connections[DEFAULT_DB_ALIAS]
        self._written, self._replan_at = 0, REPLAN_FIRST  # messages written on this connection

    async def _connected(self) -> psycopg.AsyncConnection:
        loop = asyncio.get_running_loop()
        if self._connection is not None and not self._connection.closed:
            if self._loop is loop:
                return self._connection
            # Made on another event loop (a test's, now gone): its waits belong there.
            self._connection.pgconn.finish()
        connection = await pgasync.connect(self._db)
        if settings.CHAT["SEND_PREPARED"]:
            with self._db.wrap_database_errors:
                await self._prepare(connection)
        self._connection, self._loop = connection, loop
        self._written, self._replan_at = 0, REPLAN_FIRST
        return connection

    @staticmethod
    async def _prepare(connection: psycopg.AsyncConnection) -> None:
        for sql in send_statements_prepared():
            await connection.execute(sql)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def write(self, requests: list[SendRequest]) -> list[SendResult]:
        """The batch's results, as `message_send_many` gives them."""
        if any(request.attachment_id is not None for request in requests):
            return await call(message_send_many, requests=requests)
        try:
            results = await drive_async(send_steps(requests, autocommit=True), self._query)
            self._written += len(requests)
            if self._written >= self._replan_at and self._connection is not None:
                self._replan_at *= 10
                if settings.CHAT["SEND_PREPARED"]:
                    with self._db.wrap_database_errors:
                        await self._connection.execute("DEALLOCATE ALL")  # this connection's own
                        await self._prepare(self._connection)
            return results
        except Exception:
            # Whatever failed, the connection may be mid-query or broken: the next batch (or
            # the batcher's retry) starts on a fresh one.
            await self.close()
            raise

    async def _query(self, query: SendQuery) -> list[list[tuple]]:
        connection = await self._connected()
        prepared = settings.CHAT["SEND_PREPARED"]
        with self._db.wrap_database_errors:
            try:
                return await pgasync.result_sets(connection, *query.statement(prepared))
            except psycopg.errors.InvalidSqlStatementName:
                # The session lost them (`DISCARD ALL`, a pooler's server reset); each query is
                # a transaction of its own here, so the failed one stored nothing.
                await self._prepare(connection)
                return await pgasync.result_sets(connection, *query.statement(prepared))


async def drive_async(steps: Steps, query: Callable[[SendQuery], Awaitable[list[list[tuple]]]]) -> Any:
    """`messaging.services.drive` for the event loop: each `SendQuery` awaited with `query`,
    each `Call` on the database thread, each `Publish` at once."""
    walk = Stepping(steps)
    while (step := walk.next()) is not None:
        try:
            if isinstance(step, SendQuery):
                walk.answered(await query(step))
            elif isinstance(step, Call):
                walk.answered(await call(functools.partial(step.fn, *step.args)))
            else:
                publish_many_committed(step.items)
        except Exception as exc:  # noqa: BLE001 - raised inside the steps, which decide
            walk.failed(exc)
    return walk.result
