"""Readiness checks: can this process reach its database and, when configured, its Redis bus?

Each check opens its own short-lived connection instead of borrowing the request's: the probe
then measures what a new request would meet (a connection can be made, a statement answers),
never waits behind the thread that runs the realtime layer's database work, and leaves no
connection behind. Checks run concurrently, each bounded by CHAT["READY_TIMEOUT_SECONDS"].
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend

logger = logging.getLogger(__name__)

# Database probes run here, not on asgiref's shared thread: a hung database must not queue the
# probe behind (or in front of) real work. Two threads: a stuck probe leaves room for the next.
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")
_last_failing: frozenset[str] = frozenset()
_draining = False


def mark_draining() -> None:
    """From now on readiness fails with "draining" (graceful shutdown stops new traffic first)."""
    global _draining
    _draining = True


def _database_probe(timeout: float) -> None:
    db = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
    options = db.setdefault("OPTIONS", {})
    vendor_engine = db["ENGINE"]
    if "postgresql" in vendor_engine:
        # libpq counts whole seconds (and at least 2); the asyncio timeout bounds the rest.
        options["connect_timeout"] = max(2, math.ceil(timeout))
    elif "sqlite3" in vendor_engine:
        options["timeout"] = timeout
    wrapper = load_backend(vendor_engine).DatabaseWrapper(db, DEFAULT_DB_ALIAS)
    try:
        with wrapper.cursor() as cursor:
            if wrapper.vendor == "postgresql":
                cursor.execute("SET statement_timeout = %s", [int(timeout * 1000)])
            # A table every migrated database has: a database file created empty by mistake, or
            # a server without the schema, is not ready.
            cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")
            cursor.fetchall()
    finally:
        wrapper.close()


async def _check_database(seconds: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.run_in_executor(_executor, _database_probe, seconds), seconds)


async def _check_bus(url: str, seconds: float) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)
    try:
        await asyncio.wait_for(client.ping(), seconds)
    finally:
        await client.aclose()


async def failing_parts() -> list[str]:
    """The names of the parts that are not ready ("draining", "database", "bus"); empty when
    the process can take traffic."""
    global _last_failing
    timeout = float(settings.CHAT["READY_TIMEOUT_SECONDS"])
    checks = {"database": _check_database(timeout)}
    if settings.REDIS_URL:
        checks["bus"] = _check_bus(settings.REDIS_URL, timeout)
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    failing = [
        name for name, result in zip(checks, results, strict=True) if isinstance(result, BaseException)
    ]
    if _draining:
        failing.insert(0, "draining")
    # Log changes of state only: a load balancer probes every few seconds, an outage would
    # otherwise flood the log. The exception text goes to the log, never to the client.
    now = frozenset(failing)
    if now != _last_failing:
        for name, result in zip(checks, results, strict=True):
            if isinstance(result, BaseException) and name not in _last_failing:
                logger.warning("readiness: %s failing (%s: %s)", name, type(result).__name__, result)
        for name in _last_failing - now:
            logger.warning("readiness: %s recovered", name)
        _last_failing = now
    return failing
