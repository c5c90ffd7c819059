"""The database adapter's connection housekeeping (gateway/sync.py): the reused connection is
checked with `SELECT 1` at most once per CHAT DB_HEALTH_CHECK_SECONDS, and a connection the
server dropped is still replaced at a check."""

import asyncio
import threading

import pytest
from django.db import connections

from gateway.sync import _connections_settle, call, call_read

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit: housekeeping keeps the connection


@pytest.fixture
def checks(monkeypatch):
    """Count the health checks (`is_usable`) of the real connection."""
    counted = []
    real = type(connections["default"]).is_usable

    def counting(self):
        counted.append(self.alias)
        return real(self)

    monkeypatch.setattr(type(connections["default"]), "is_usable", counting)
    return counted


@pytest.fixture
def persistent():
    """The default connection, open and without a maximum age (as with CONN_MAX_AGE=None)."""
    conn = connections["default"]
    conn.ensure_connection()
    conn.close_at = None
    conn.__dict__.pop("_chat_checked_at", None)  # not checked yet, whatever ran before on it
    return conn


def _interval(settings, seconds: float) -> None:
    settings.CHAT = {**settings.CHAT, "DB_HEALTH_CHECK_SECONDS": seconds}


def test_a_reused_connection_is_checked_once_per_window(settings, checks, persistent):
    _interval(settings, 3600)
    for _ in range(5):
        _connections_settle()
        with persistent.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert checks == ["default"]


def test_zero_checks_before_every_call(settings, checks, persistent):
    _interval(settings, 0)
    for _ in range(3):
        _connections_settle()
        with persistent.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert checks == ["default"] * 3


def test_a_connection_the_server_dropped_is_replaced_at_the_check(settings, persistent):
    if persistent.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    _interval(settings, 0)
    old_pid = persistent.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    finally:
        other.close()
    _connections_settle()
    with persistent.cursor() as cursor:  # a fresh connection, not an error
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


def _thread_id() -> int:
    return threading.get_ident()


def _thread_name() -> str:
    return threading.current_thread().name


async def test_calls_run_in_one_database_thread_and_reads_beside_it(settings):
    settings.CHAT = {**settings.CHAT, "DB_READ_THREADS": 2}
    first, second = await call(_thread_id), await call(_thread_id)
    assert first == second
    readers = set(await asyncio.gather(*(call_read(_thread_id) for _ in range(8))))
    assert first not in readers and threading.get_ident() not in readers
    assert (await call_read(_thread_name)).startswith("db-read")


async def test_reads_use_the_database_thread_when_no_read_threads_are_set(settings):
    settings.CHAT = {**settings.CHAT, "DB_READ_THREADS": 0}
    assert await call_read(_thread_id) == await call(_thread_id)


async def test_a_read_sees_what_the_database_thread_committed(make_user):
    from accounts.models import User

    user = make_user("Reader")
    found = await call_read(
        lambda: User.objects.filter(pk=user.user.pk).values_list("display_name", flat=True)[0]
    )
    assert found == "Reader"
