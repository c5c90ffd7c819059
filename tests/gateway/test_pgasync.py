"""gateway/pgasync.py: the realtime layer's asynchronous connections read what Django's own
connection reads. Real PostgreSQL."""

import datetime

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from gateway import pgasync

pytestmark = pytest.mark.django_db(transaction=True)

INSTANTS = [
    "2026-12-06 15:04:16.043914+00",
    "2026-06-30 23:59:59.999999-07",  # another offset, summer
    "1999-12-31 23:00:00+05:30",
]


def _django_reads(sql: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


async def test_timestamps_load_as_djangos_connection_loads_them():
    sql = " UNION ALL ".join(f"SELECT '{instant}'::timestamptz" for instant in INSTANTS)
    expected = await sync_to_async(_django_reads)(sql)
    made = await pgasync.connect(connections["default"])
    try:
        (loaded,) = await pgasync.result_sets(made, sql, [])
    finally:
        await made.close()
    values = [row[0] for row in loaded]
    assert values == expected
    assert [value.tzinfo for value in values] == [datetime.UTC] * len(INSTANTS)
    assert [value.isoformat() for value in values] == [value.isoformat() for value in expected]
    # psycopg's own loader (its C version where installed), not Django's subclass of the Python one.
    loader = made.adapters.get_loader(made.adapters.types["timestamptz"].oid, 0)
    assert not loader.__module__.startswith("django")
