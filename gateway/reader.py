"""A first-party handshake's read on the event loop (CHAT HANDSHAKE_READ_ON_LOOP, PostgreSQL):
`gateway.auth.connection_open`'s statements over asynchronous psycopg connections of this
module's own, instead of on a read thread.

On a read thread the read cost the thread ~0.4-0.5 ms of CPU per handshake, and at each of its
two round trips the thread released the GIL and then waited to take it back from the busy event
loop (bench/README.md, session 5; a third of a handshake's CPU). Here the loop awaits
PostgreSQL and serves its sockets meanwhile, and the read is one round trip: the memberships are
read through the login session (`snapshot_statement`), so they need not wait for the session's
row and go in the same query as the session check (two statements, client-side binding, as
Django's connection binds). A second round trip only for a user with direct chats: their
partners and pending requests, together.

The Python around the statements is the thread path's: the session row is checked by
`accounts.tokens.user_for_session_row`, the snapshot built by `messaging.selectors.snapshot_*`.
What this path does not cover goes to the read threads as before: the ExpressChat refresh path
(an expired access token renewed at the handshake). Connections are opened as Django opens its
own (`get_connection_params`: the same database, options and type adapters, the session's time
zone UTC), in autocommit; at most CHAT HANDSHAKE_READ_CONNECTIONS at once, each serving one
read at a time, opened on first use and kept for the process's life. A connection that fails a
read is closed (the handshake is refused as an internal error, which sends the client to
retry), and the next read opens a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from accounts.models import User
from accounts.tokens import AccessClaims, session_with_user_row, session_with_user_sql, user_for_session_row
from messaging.selectors import (
    ConversationSnapshot,
    snapshot_from,
    snapshot_partner_statements,
    snapshot_rows,
    snapshot_statement,
)

# Database OPTIONS that make Django set up its sessions in ways this module does not repeat: with
# any of them, the handshake's read stays on the read threads (as gateway/writer.py decides).
_SESSION_OPTIONS = ("server_side_binding", "assume_role", "isolation_level")


def usable() -> bool:
    """Whether the handshake's read may run on the event loop: PostgreSQL, CHAT
    HANDSHAKE_READ_ON_LOOP, and a session this module sets up as Django would."""
    db = connections[DEFAULT_DB_ALIAS]
    options = db.settings_dict["OPTIONS"]
    return (
        settings.CHAT["HANDSHAKE_READ_ON_LOOP"]
        and db.vendor == "postgresql"
        and not any(options.get(name) for name in _SESSION_OPTIONS)
    )


class LoopReader:
    """Up to CHAT HANDSHAKE_READ_CONNECTIONS asynchronous connections, one read at a time on
    each; reads past that wait their turn in order."""

    def __init__(self) -> None:
        self._idle: list[psycopg.AsyncConnection] = []
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Made on another event loop (a test's, now gone): its waits belong there.
            for connection in self._idle:
                connection.pgconn.finish()
            self._idle, self._loop = [], loop
            self._slots = asyncio.Semaphore(max(settings.CHAT["HANDSHAKE_READ_CONNECTIONS"], 1))
        assert self._slots is not None
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            if connection is None or connection.closed:
                connection = await _connect()
            try:
                yield connection
            except BaseException:
                await connection.close()  # whatever failed, it may be mid-query or broken
                raise
            self._idle.append(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


async def _connect() -> psycopg.AsyncConnection:
    db = connections[DEFAULT_DB_ALIAS]
    params = db.get_connection_params()  # builds a dict: no I/O, safe on the loop
    params.pop("cursor_factory", None)
    with db.wrap_database_errors:
        connection = await psycopg.AsyncConnection.connect(
            **params, autocommit=True, cursor_factory=psycopg.AsyncClientCursor
        )
        if settings.USE_TZ:
            await connection.execute("SET TIME ZONE 'UTC'")
    return connection


reader = LoopReader()


async def _sets(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """The rows of each statement, all sent as one query (one round trip)."""
    sql = "; ".join(statement for statement, _ in statements)
    params = [param for _, statement_params in statements for param in statement_params]
    db = connections[DEFAULT_DB_ALIAS]
    async with reader.connection() as connection:
        with db.wrap_database_errors:
            async with connection.cursor() as cursor:
                await cursor.execute(sql, params)
                sets = [await cursor.fetchall()]
                while cursor.nextset():
                    sets.append(await cursor.fetchall())
    return sets


async def connection_open(
    *, claims: AccessClaims, kinds: tuple[str, ...]
) -> tuple[User, ConversationSnapshot]:
    """What `gateway.auth.connection_open` reads for a live access token, on the event loop:
    the session's user (checked as `user_for_claims` checks it) and the greeting's snapshot."""
    session_rows, membership_rows = await _sets(
        [(session_with_user_sql(), [claims.sid]), snapshot_statement(session_id=claims.sid, kinds=kinds)]
    )
    user = user_for_session_row(claims, session_with_user_row(session_rows[0] if session_rows else None))
    found = snapshot_rows(membership_rows)
    statements = snapshot_partner_statements(user=user, found=found)
    partner_sets = await _sets(statements) if statements else None
    return user, snapshot_from(found, partner_sets)
