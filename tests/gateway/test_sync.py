"""The database adapter's connection housekeeping (gateway/sync.py): the reused connection is
checked with `SELECT 1` at most once per CHAT DB_HEALTH_CHECK_SECONDS, and a connection the
server dropped is still replaced at a check."""

import pytest
from django.db import connections

from gateway.sync import _connections_settle, call

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


async def test_calls_run_in_one_database_thread():
    def thread_id() -> int:
        import threading

        return threading.get_ident()

    first, second = await call(thread_id), await call(thread_id)
    assert first == second
