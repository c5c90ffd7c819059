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
The two statements of the first round trip are prepared once per connection and run by name
(CHAT HANDSHAKE_READ_PREPARED): parsing and planning them cost PostgreSQL 0.38 ms of CPU per
handshake, 0.11 ms once prepared (bench/handshake_cost.py `loop`). What this path does not
cover goes to the read threads as before: the ExpressChat refresh path
(an expired access token renewed at the handshake). Connections are opened as Django opens its
own (`get_connection_params`: the same database, options and type adapters, the session's time
zone UTC), in autocommit; at most CHAT HANDSHAKE_READ_CONNECTIONS at once, each serving one
read at a time, opened on first use and kept for the process's life. A connection that fails a
read is closed (the handshake is refused as an internal error, which sends the client to
retry), and the next read opens a fresh one.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
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

from . import pgasync


def usable() -> bool:
    """Whether the handshake's read may run on the event loop: PostgreSQL, CHAT
    HANDSHAKE_READ_ON_LOOP, and a session this module sets up as Django would."""
    return pgasync.usable("HANDSHAKE_READ_ON_LOOP")


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
                connection = await pgasync.connect(connections[DEFAULT_DB_ALIAS])
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


reader = LoopReader()


# Prepared statements (CHAT HANDSHAKE_READ_PREPARED) held by each connection, by name.
_prepared: weakref.WeakKeyDictionary[psycopg.AsyncConnection, set[str]] = weakref.WeakKeyDictionary()


def _prepared_form(sql: str) -> tuple[str, str]:
    """(the name of `sql` prepared, its `PREPARE`). The name ends with a digest of the
    statement, so a session that outlived a deploy (a pooler in session mode) and holds an
    older version's statement under that name never runs it for the new one. The statements
    hold no `%` but their placeholders (names come from the models' `_meta`)."""
    name = f"chat_handshake_{hashlib.sha256(sql.encode()).hexdigest()[:16]}"
    parts = sql.split("%s")
    numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
    return name, f"PREPARE {name} AS {numbered}"


async def _prepare(connection: psycopg.AsyncConnection, statements: list[tuple[str, list]]) -> str:
    """The query that runs `statements` by name, preparing on `connection` those it lacks."""
    held = _prepared.setdefault(connection, set())
    executes = []
    for sql, params in statements:
        name, prepare = _prepared_form(sql)
        if name not in held:
            await connection.execute(prepare)
            held.add(name)
        executes.append(f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}")
    return "; ".join(executes)


async def _sets(statements: list[tuple[str, list]], *, prepared: bool = False) -> list[list[tuple]]:
    """The rows of each statement, all sent as one query (one round trip). `prepared` (and
    CHAT HANDSHAKE_READ_PREPARED): run by name, prepared once per connection, so PostgreSQL
    neither parses nor plans them for every handshake (statements whose text varies, such as
    an `IN` list's, are not worth preparing)."""
    params = [param for _, statement_params in statements for param in statement_params]
    db = connections[DEFAULT_DB_ALIAS]
    async with reader.connection() as connection:
        with db.wrap_database_errors:
            if not (prepared and settings.CHAT["HANDSHAKE_READ_PREPARED"]):
                return await pgasync.result_sets(connection, "; ".join(sql for sql, _ in statements), params)
            try:
                return await pgasync.result_sets(connection, await _prepare(connection, statements), params)
            except psycopg.errors.InvalidSqlStatementName:
                # The session lost them (`DISCARD ALL`, a pooler's server reset): a read
                # changes nothing, so it is run again once they are prepared again.
                _prepared.pop(connection, None)
                return await pgasync.result_sets(connection, await _prepare(connection, statements), params)


async def connection_open(
    *, claims: AccessClaims, kinds: tuple[str, ...]
) -> tuple[User, ConversationSnapshot]:
    """What `gateway.auth.connection_open` reads for a live access token, on the event loop:
    the session's user (checked as `user_for_claims` checks it) and the greeting's snapshot."""
    session_rows, membership_rows = await _sets(
        [(session_with_user_sql(), [claims.sid]), snapshot_statement(session_id=claims.sid, kinds=kinds)],
        prepared=True,
    )
    user = user_for_session_row(claims, session_with_user_row(session_rows[0] if session_rows else None))
    found = snapshot_rows(membership_rows)
    statements = snapshot_partner_statements(user=user, found=found)
    partner_sets = await _sets(statements) if statements else None
    return user, snapshot_from(found, partner_sets)
