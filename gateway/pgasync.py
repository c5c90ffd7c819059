"""Asynchronous PostgreSQL connections of the realtime layer's own, opened as Django opens its
own: the send batches' (gateway/writer.py) and the handshakes' reads (gateway/reader.py) run on
the event loop over them, where a thread had to take the GIL back from the busy loop after each
of its round trips (bench/README.md, issue 19 sessions 5 and 6)."""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.datetime import TimestamptzLoader

# Database OPTIONS that make Django set up its sessions in ways these connections do not repeat
# (client-side binding is theirs; a role to assume, an isolation level): with any of them, the
# work stays on threads with Django's connections.
SESSION_OPTIONS = ("server_side_binding", "assume_role", "isolation_level")


def usable(switch: str) -> bool:
    """Whether work may go over these connections: PostgreSQL, the CHAT setting `switch` on,
    and a session set up as Django would (`SESSION_OPTIONS`)."""
    db = connections[DEFAULT_DB_ALIAS]
    options = db.settings_dict["OPTIONS"]
    return (
        settings.CHAT[switch]
        and db.vendor == "postgresql"
        and not any(options.get(name) for name in SESSION_OPTIONS)
    )


async def connect(db: BaseDatabaseWrapper) -> psycopg.AsyncConnection:
    """A connection as Django opens `db`'s (`get_connection_params`: the same database, options
    and type adapters; the session's time zone UTC), in autocommit, binding parameters
    client-side (statements joined by `;` go as one query). Errors come as Django's."""
    params = db.get_connection_params()  # builds a dict: no I/O, safe on the loop
    params.pop("cursor_factory", None)
    with db.wrap_database_errors:
        connection = await psycopg.AsyncConnection.connect(
            **params, autocommit=True, cursor_factory=psycopg.AsyncClientCursor
        )
        if settings.USE_TZ:
            await connection.execute("SET TIME ZONE 'UTC'")
            # psycopg's own loader, its C version: aware datetimes in the session's zone, UTC.
            # Django's subclasses the Python one to set a tzinfo (UTC) on what it loaded: the
            # same values, at ~4.5% of the event loop's py-spy samples at direct saturation
            # (a send batch loads the timestamps of every membership and conversation it reads).
            connection.adapters.register_loader("timestamptz", TimestamptzLoader)
    return connection


async def result_sets(connection: psycopg.AsyncConnection, sql: str, params: list) -> list[list[tuple]]:
    """The rows of each statement of the query `sql`, in order."""
    async with connection.cursor() as cursor:
        await cursor.execute(sql, params)
        sets = [await cursor.fetchall()]
        while cursor.nextset():
            sets.append(await cursor.fetchall())
    return sets
