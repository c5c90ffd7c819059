"""The one adapter from async transport code to the sync services and selectors."""

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import connections

T = TypeVar("T")


def _connections_settle() -> None:
    """Before each call, in the database thread: Django's per-request connection housekeeping
    (`close_old_connections`: drop a connection past its CONN_MAX_AGE or one that had an
    error), with its health check (`SELECT 1`) run at most once per CHAT
    DB_HEALTH_CHECK_SECONDS instead of before every call. Django checks a reused connection at
    the first query of every request; a realtime process makes a "request" of every database
    call (a handshake makes two, a send batch one), and that round trip was 12% of the
    server's samples at handshake saturation (bench idle scenario, py-spy). A connection the
    server drops inside the window fails one call and is replaced before the next (the send
    batcher retries its batch once on a fresh connection). 0: a check before every call."""
    interval = settings.CHAT["DB_HEALTH_CHECK_SECONDS"]
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()
        if conn.connection is None or conn.health_check_done:
            continue
        checked = getattr(conn, "_chat_checked_at", None)
        if checked is None or now - checked >= interval:
            conn.close_if_health_check_failed()  # SELECT 1 now; closed if it fails
            conn._chat_checked_at = now
        conn.health_check_done = True


class _DatabaseCall(SyncToAsync):
    """channels' `database_sync_to_async` (connection housekeeping around each call), with the
    health check throttled as above."""

    def thread_handler(self, loop, *args, **kwargs):
        _connections_settle()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            for conn in connections.all(initialized_only=True):
                conn.close_if_unusable_or_obsolete()


async def call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a service or selector in the database thread and return its result."""
    return await _DatabaseCall(fn)(**kwargs)


def settled(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` with the connection housekeeping of `_DatabaseCall` around it: for
    a thread of its own (a read thread, the send batcher's writers)."""
    _connections_settle()
    try:
        return fn(*args, **kwargs)
    finally:
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()


class _Threads:
    """A pool of database threads, each with its own connection, sized by a CHAT setting and
    started on first use; a size of 0 sends its calls to the one database thread (`call`)."""

    def __init__(self, setting: str, prefix: str) -> None:
        self.setting = setting
        self.prefix = prefix
        self.executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
        threads = settings.CHAT[self.setting]
        if threads <= 0:
            return await call(fn, **kwargs)
        if self.executor is None:
            self.executor = ThreadPoolExecutor(threads, thread_name_prefix=self.prefix)
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, functools.partial(settled, fn, **kwargs)
        )


_readers = _Threads("DB_READ_THREADS", "db-read")


async def call_read(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a selector that only reads (no write, no transaction, no publish) on one of CHAT
    DB_READ_THREADS threads, each with its own database connection, instead of the one database
    thread: the handshake's reads (hundreds a second in a reconnect storm) then wait neither for
    each other's round trips to PostgreSQL nor for the send batches. 0: the database thread.

    Handed to the pool directly, not through asgiref's SyncToAsync: a read needs none of what
    that adds in the event loop (the caller's context variables copied there and back, a
    shielded future, the thread-sensitive bookkeeping), and a handshake makes one such call."""
    return await _readers.run(fn, kwargs)


_outside: ThreadPoolExecutor | None = None


async def call_outside(fn: Callable[..., T], /, *args: Any) -> T:
    """Run a blocking call that touches no database (an app's verification URL) on a small
    pool of its own (CHAT TENANT_VERIFY_WORKERS threads): the database thread is shared by
    every connection and must never wait on the network."""
    global _outside
    if _outside is None:
        _outside = ThreadPoolExecutor(settings.CHAT["TENANT_VERIFY_WORKERS"], thread_name_prefix="outside")
    return await asyncio.get_running_loop().run_in_executor(_outside, functools.partial(fn, *args))
