"""Statements the write paths share: the conversation's sequence and revision allocators (see
the `Conversation` model), the insert of a batch of messages and the move of read pointers.
Call inside a transaction."""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from chatproject.core import rows

from ..models import Conversation, Membership, Message
from .audience import current_members_by_public_id_sql

# Lock order. Every statement here that moves several conversations' allocators locks their
# rows in id order, through a sub-select `ORDER BY id FOR NO KEY UPDATE` that the UPDATE joins:
# rows leave it locked and in order, and the UPDATE only touches rows it returned, so whatever
# join PostgreSQL picks, the locks are taken lowest id first. A bare `UPDATE ... FROM
# unnest(sorted ids)` locks rows in the order the join meets them (a hash join over a
# sequential scan meets them in their order on disk), so two batches that share conversations
# (two processes) could each hold a row the other waits for: a deadlock, and one batch failed
# (`test_a_send_batch_locks_its_conversations_in_id_order`).


def _take_seqs(counts: dict[int, int], now) -> dict[int, tuple[int, int]]:
    """Bump each conversation's allocators by its count; returns conversation pk -> (new
    last_seq, new last_rev).

    One UPDATE ... RETURNING, which also locks the rows until commit, so concurrent senders
    queue here and numbers stay gapless (rows locked in id order: see "Lock order" above). A new
    message is a change too, so `last_rev` moves by the same count in the same statement.
    `last_message_at` only moves forward.
    """
    table = connection.ops.quote_name(Conversation._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    ids = sorted(counts)
    moved_at = "CASE WHEN last_message_at > %s THEN last_message_at ELSE %s END"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two array parameters: the statement text is the same for every batch size, so
            # the driver does not re-parse a long CASE list each time.
            # Rows locked in id order by the sub-select ("Lock order" above).
            cursor.execute(
                f"UPDATE {table} AS c SET last_seq = c.last_seq + v.n, last_rev = c.last_rev + v.n, "  # noqa: S608
                f"last_message_at = {moved_at.replace('last_message_at', 'c.last_message_at')} "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, n), "
                f"(SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE) AS l "
                "WHERE c.id = v.id AND l.id = v.id "
                "RETURNING c.id, c.last_seq, c.last_rev",
                [stamp, stamp, ids, [counts[pk] for pk in ids], ids],
            )
        else:
            cases = "CASE id " + " ".join("WHEN %s THEN %s" for _ in ids) + " END"
            pairs = [v for pk in ids for v in (pk, counts[pk])]
            cursor.execute(
                f"UPDATE {table} SET last_seq = last_seq + {cases}, last_rev = last_rev + {cases}, "  # noqa: S608
                f"last_message_at = {moved_at} "
                f"WHERE id IN ({', '.join(['%s'] * len(ids))}) RETURNING id, last_seq, last_rev",
                [*pairs, *pairs, stamp, stamp, *ids],
            )
        return {pk: (last_seq, last_rev) for pk, last_seq, last_rev in cursor.fetchall()}


def _take_rev(conversation: Conversation) -> int:
    """Inside a transaction: the conversation's next revision, for a change to one of its
    messages (edit, delete, hide, reaction). Locks the conversation row until commit, as a send
    does, so revisions stay gapless and in commit order per conversation."""
    table = connection.ops.quote_name(Conversation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_rev = last_rev + 1 WHERE id = %s RETURNING last_rev",  # noqa: S608
            [conversation.pk],
        )
        (rev,) = cursor.fetchone()
    conversation.last_rev = rev
    return rev


def _advance_read_pointers(pointers: dict[int, int]) -> None:
    """Move memberships' read pointers forward (never backwards), one statement."""
    table = connection.ops.quote_name(Membership._meta.db_table)
    ids = sorted(pointers)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS m SET last_read_seq = v.seq "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, seq) "
                "WHERE m.id = v.id AND m.last_read_seq < v.seq",
                [ids, [pointers[pk] for pk in ids]],
            )
        else:
            cases = "CASE id " + " ".join("WHEN %s THEN %s" for _ in ids) + " END"
            params = [v for pk in ids for v in (pk, pointers[pk])]
            cursor.execute(
                f"UPDATE {table} SET last_read_seq = {cases} "  # noqa: S608
                f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND last_read_seq < {cases}",
                [*params, *ids, *params],
            )


@cache
def message_insert_fields() -> tuple:
    """Every concrete field of Message but the primary key, in the model's order: the values
    `_messages_write` takes, and (with the key first) the order `Model.from_db` takes them in."""
    return tuple(f for f in rows.concrete_fields(Message) if not f.primary_key)


@cache
def _insert_positions() -> tuple[int, int, int, int]:
    """Where seq, rev, the conversation and the public id are among `message_insert_fields`."""
    at = {f.attname: i for i, f in enumerate(message_insert_fields())}
    return at["seq"], at["rev"], at["conversation_id"], at["public_id"]


@lru_cache(maxsize=64)  # one statement per batch size, not on PostgreSQL (bounded)
def _messages_insert_sql(vendor: str, count: int) -> str:
    fields = message_insert_fields()
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row = f"({', '.join(['%s'] * len(fields))})"
    return (
        f"INSERT INTO {rows.table(connection, Message)} ({names}) VALUES {', '.join([row] * count)} "  # noqa: S608
        f"RETURNING {connection.ops.quote_name(Message._meta.pk.column)}, "
        f"{connection.ops.quote_name(Message._meta.get_field('public_id').column)}"
    )


@cache
def _messages_write_sql(vendor: str) -> str:
    """PostgreSQL: `_messages_write` as one statement. Data-modifying CTEs: the allocators of
    the batch's conversations move (rows locked in id order: see "Lock order" above), each
    message is inserted with its conversation's next seq and rev in batch order, and each
    sender's read pointer moves to their last message; the statement returns the messages.

    The rows come as one JSON parameter (an array per message: the given columns, then its
    membership and its place k among the batch's messages into its conversation), taken apart
    by PostgreSQL: with client-side binding, psycopg quoted the fourteen array parameters this
    replaces in Python, 152 us for a batch of one and 1,080 us for 50 (json.dumps: 4 and 42).
    As jsonb, parsed once per message: `->>` on json parses the element again for each field
    (the statement's wall for 50 sends was 15% longer)."""
    fields = message_insert_fields()
    c, m = Conversation._meta, Membership._meta
    qn = connection.ops.quote_name
    given = [f for f in fields if f.attname not in ("seq", "rev")]
    types = [(f.rel_db_type(connection) if f.is_relation else f.db_type(connection)) for f in given]
    # The base type, not its length: a value too long fails the insert, as it would anywhere.
    casts = [
        f"(t.e->>{i})::{kind.split('(')[0]} AS {qn(f.column)}"
        for i, (f, kind) in enumerate(zip(given, types, strict=True))
    ]
    casts += [f"(t.e->>{len(given)})::bigint AS membership", f"(t.e->>{len(given) + 1})::bigint AS k", "t.n"]
    conversation = qn(Message._meta.get_field("conversation").column)
    select = ", ".join(
        {"seq": "s.seq0 + v.k", "rev": "s.rev0 + v.k"}.get(f.attname, f"v.{qn(f.column)}") for f in fields
    )
    last_seq, last_rev, moved_at = (
        qn(c.get_field(n).column) for n in ("last_seq", "last_rev", "last_message_at")
    )
    conversations, pk = rows.table(connection, Conversation), qn(c.pk.column)
    return (
        f"WITH v AS (SELECT {', '.join(casts)} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(e, n)), "  # noqa: S608
        f"counts AS (SELECT {conversation} AS id, count(*) AS n FROM v GROUP BY {conversation}), "
        f"s AS (UPDATE {conversations} AS c "
        f"SET {last_seq} = c.{last_seq} + counts.n, {last_rev} = c.{last_rev} + counts.n, "
        f"{moved_at} = CASE WHEN c.{moved_at} > %s THEN c.{moved_at} ELSE %s END "
        f"FROM counts, (SELECT {pk} AS id FROM {conversations} "
        f"WHERE {pk} IN (SELECT id FROM counts) ORDER BY {pk} FOR NO KEY UPDATE) AS l "
        f"WHERE c.{pk} = counts.id AND l.id = counts.id "
        f"RETURNING c.{pk} AS id, c.{last_seq} - counts.n AS seq0, c.{last_rev} - counts.n AS rev0), "
        f"ins AS (INSERT INTO {rows.table(connection, Message)} ({', '.join(qn(f.column) for f in fields)}) "
        f"SELECT {select} FROM v JOIN s ON s.id = v.{conversation} "
        f"ORDER BY v.n RETURNING {qn(Message._meta.pk.column)}, "
        f"{', '.join(qn(Message._meta.get_field(n).column) for n in ('public_id', 'seq', 'rev'))}), "
        f"pointers AS (UPDATE {rows.table(connection, Membership)} AS m "
        f"SET {qn(m.get_field('last_read_seq').column)} = x.seq "
        f"FROM (SELECT v.membership, max(s.seq0 + v.k) AS seq FROM v "
        f"JOIN s ON s.id = v.{conversation} GROUP BY v.membership) AS x "
        f"WHERE m.{qn(m.pk.column)} = x.membership AND m.{qn(m.get_field('last_read_seq').column)} < x.seq) "
        "SELECT * FROM ins"
    )


# The one-statement send (issue 19, session 8): each message of the batch as a JSON array of
# these, in this order (`_sends_write`).
SEND_GIVEN = ("public_id", "sender", "conversation", "expected_kind", "kind", "content", "client_message_id")


@cache
def _sends_write_sql(vendor: str) -> str:
    """PostgreSQL: a send batch's probe and write as one statement, for the batches that need
    nothing else (`sending._in_one_statement`). The batch is stored only if the probe's checks
    pass for every send, made here as conditions of the rows the write takes: the sender is a
    current member (`left_at` null) of the conversation named by its public id, the
    conversation is not blocked and of the kind the transport expects (when it says), and no
    message of the same sender in that conversation carries its client message id. The rest is
    `_messages_write_sql`: the allocators move (rows locked in id order, "Lock order" above),
    the messages are inserted with their conversation's next seqs and revs in batch order and
    each sender's read pointer moves to their last message.

    Returns a row per stored message, in batch order: its place n in the batch (from 1), its
    pk, seq and rev, then its membership's and conversation's columns as the probe read them
    (`_memberships_probe_sql`: the snapshot the statement started from). No rows: a send was
    refused or is a retry, nothing was stored, and the caller sends the batch through the two
    statements, which tell which (`sending.send_steps`). Fewer rows than sends only when a
    conversation was deleted while the statement waited for its lock. A block that commits
    while the statement waits for a conversation's lock is seen once the lock is taken (the
    statement's snapshot is older), and nothing is stored; a leave is not (the membership is
    read in the snapshot: the leaver's send is stored after their leave, as the two steps, whose
    probe runs earlier still, could store it too). A concurrent send that stored the same client
    message id after the statement's snapshot makes it fail on the idempotency constraint,
    storing nothing.

    Parameters: the batch (jsonb, a `SEND_GIVEN` array per message), then the time stamp. Two
    round trips a batch became one: at 1,000 sends/s a batch is one or two sends, and the probe
    was 0.28-0.36 ms of its 1.25 ms of wall and ~180 us of PostgreSQL's CPU (bench/README.md,
    session 7)."""
    qn = connection.ops.quote_name
    f, m, c = Message._meta, Membership._meta, Conversation._meta
    m_fields, c_fields = rows.concrete_fields(Membership), rows.concrete_fields(Conversation)

    def base(field: Any) -> str:
        kind = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
        return kind.split("(")[0]

    def col(meta: Any, name: str) -> str:
        return qn(meta.get_field(name).column)

    given = [f.get_field(name) for name in ("public_id", "kind", "content", "client_message_id")]
    at = {name: i for i, name in enumerate(SEND_GIVEN)}
    k = ", ".join(
        [
            *(f"(t.e->>{at[field.name]})::{base(field)} AS {field.name}" for field in given),
            f"(t.e->>{at['sender']})::bigint AS sender",
            f"t.e->>{at['conversation']} AS conversation",
            f"t.e->>{at['expected_kind']} AS expected_kind",
            "t.n",
        ]
    )
    conversations, memberships, messages = (
        rows.table(connection, model) for model in (Conversation, Membership, Message)
    )
    c_pk, m_pk = qn(c.pk.column), qn(m.pk.column)
    values = {
        "public_id": "v.public_id",
        "conversation": "v.conversation_pk",
        "seq": "s.seq0 + v.nth",
        "rev": "s.rev0 + v.nth",
        "sender": "v.sender",
        "kind": "v.kind",
        "content": "v.content",
        "client_message_id": "v.client_message_id",
        "created_at": "t0.at",
        "edited_at": "NULL",
        "deleted_at": "NULL",
        "hidden_at": "NULL",
        "reply_to": "NULL",
        "attachment": "NULL",
    }
    fields = message_insert_fields()  # a field added to Message fails here (KeyError), loudly
    select = ", ".join(values[field.name] for field in fields)
    last_seq, last_rev, moved_at = (col(c, n) for n in ("last_seq", "last_rev", "last_message_at"))
    read_seq = col(m, "last_read_seq")
    kept = ", ".join(
        [f"m.{qn(x.column)} AS m{i}" for i, x in enumerate(m_fields)]
        + [f"c.{qn(x.column)} AS c{i}" for i, x in enumerate(c_fields)]
    )
    out = ", ".join([f"v.m{i}" for i in range(len(m_fields))] + [f"v.c{i}" for i in range(len(c_fields))])
    return (
        "WITH t0 AS (SELECT %s::jsonb AS batch, %s::timestamptz AS at), "  # noqa: S608
        f"k AS (SELECT {k} FROM t0, jsonb_array_elements(t0.batch) WITH ORDINALITY AS t(e, n)), "
        # v: each send with its conversation and membership looked up by index (LATERAL, by
        # construction: the two-step probe's generic plan hashed a sequential scan of every
        # membership for a batch of one) and a flag for its checks; the idempotency check is a
        # scalar sub-select with LIMIT, one index lookup a send (as NOT EXISTS inside the flag,
        # PostgreSQL hashed a sequential scan of the whole message table for every batch when
        # its statistics lagged behind a fast-growing table: 32,662 rows read for a batch,
        # PostgreSQL at 80-90% of a core at 1,000 sends/s). w: the sends, numbered per
        # conversation, when every one of them passes (the batch is stored whole or not at
        # all). v is materialized and keeps its refused rows, not inner joins that drop them:
        # the planner then estimates w from the batch (the function's 100 rows), as it
        # estimates the two-step write's rows, and joins the CTEs below by hashing. With the
        # checks as join conditions it estimated one row and ran the lock's sub-select once per
        # conversation and the joins below as nested loops, O(batch^2): PostgreSQL's CPU at
        # direct saturation was 38% against the two steps' 26%. l: the lock, run once; it
        # returns the rows as they are once locked (a block that committed while the statement
        # waited for the lock included), and a block there stores nothing (s, and so ins and
        # pointers, take no row): the two steps then refuse the batch.
        f"v AS MATERIALIZED (SELECT k.*, c.{c_pk} AS conversation_pk, m.{m_pk} AS membership, {kept}, "
        f"m.{m_pk} IS NOT NULL AND c.{col(c, 'blocked_at')} IS NULL "
        f"AND (k.expected_kind IS NULL OR c.{col(c, 'kind')} = k.expected_kind) "
        f"AND (k.client_message_id IS NULL OR (SELECT 1 FROM {messages} x "
        f"WHERE x.{col(f, 'conversation')} = c.{c_pk} AND x.{col(f, 'sender')} = k.sender "
        f"AND x.{col(f, 'client_message_id')} = k.client_message_id LIMIT 1) IS NULL) AS ok "
        f"FROM k LEFT JOIN LATERAL (SELECT * FROM {conversations} c WHERE c.{col(c, 'public_id')} = k.conversation LIMIT 1) c ON true "
        f"LEFT JOIN LATERAL (SELECT * FROM {memberships} m WHERE m.{col(m, 'conversation')} = c.{c_pk} AND m.{col(m, 'user')} = k.sender "
        f"AND m.{col(m, 'left_at')} IS NULL LIMIT 1) m ON true), "
        "w AS (SELECT v.*, row_number() OVER (PARTITION BY conversation_pk ORDER BY n) AS nth FROM v "
        "WHERE (SELECT bool_and(ok) FROM v)), "
        "counts AS (SELECT conversation_pk AS id, count(*) AS n FROM w GROUP BY conversation_pk), "
        f"l AS MATERIALIZED (SELECT {c_pk} AS id, {col(c, 'blocked_at')} AS blocked_at FROM {conversations} "
        f"WHERE {c_pk} IN (SELECT id FROM counts) ORDER BY {c_pk} FOR NO KEY UPDATE), "
        f"s AS (UPDATE {conversations} AS c "
        f"SET {last_seq} = c.{last_seq} + counts.n, {last_rev} = c.{last_rev} + counts.n, "
        f"{moved_at} = CASE WHEN c.{moved_at} > t0.at THEN c.{moved_at} ELSE t0.at END "
        f"FROM counts, t0, l "
        f"WHERE c.{c_pk} = counts.id AND l.id = counts.id "
        "AND NOT EXISTS (SELECT 1 FROM l AS b WHERE b.blocked_at IS NOT NULL) "
        f"RETURNING c.{c_pk} AS id, c.{last_seq} - counts.n AS seq0, c.{last_rev} - counts.n AS rev0), "
        f"ins AS (INSERT INTO {messages} ({', '.join(qn(x.column) for x in fields)}) "
        f"SELECT {select} FROM w AS v JOIN s ON s.id = v.conversation_pk CROSS JOIN t0 "
        f"ORDER BY v.n RETURNING {qn(f.pk.column)}, {col(f, 'public_id')}, {col(f, 'seq')}, {col(f, 'rev')}), "
        f"pointers AS (UPDATE {memberships} AS m SET {read_seq} = x.seq "
        "FROM (SELECT v.membership, max(s.seq0 + v.nth) AS seq FROM w AS v "
        "JOIN s ON s.id = v.conversation_pk GROUP BY v.membership) AS x "
        f"WHERE m.{m_pk} = x.membership AND m.{read_seq} < x.seq) "
        f"SELECT v.n, ins.{qn(f.pk.column)}, ins.{col(f, 'seq')}, ins.{col(f, 'rev')}, {out} "
        f"FROM ins JOIN w AS v ON v.public_id = ins.{col(f, 'public_id')} ORDER BY v.n"
    )


def _sends_write(batch: list[list[Any]], stamp: Any, conversation_ids: list[str]) -> Steps:
    """Steps of the one-statement send (`_sends_write_sql`): `batch` a `SEND_GIVEN` list per
    message, `stamp` the batch's time (adapted), `conversation_ids` the public ids of its
    conversations (their members are read right after the write, in the same round trip and
    transaction: `audience.current_members_by_public_id_sql`). Returns, per stored message,
    (its index in `batch`, pk, seq, rev, its sender's membership with the conversation
    cached: one instance per membership, as the probe makes them), and the members' rows."""
    n_m = len(rows.concrete_fields(Membership))
    n_c = len(rows.concrete_fields(Conversation))
    conversation_field = Membership._meta.get_field("conversation")
    db = connections[DEFAULT_DB_ALIAS]  # not the proxy (`_memberships_and_stored`)
    sets = yield SendQuery(
        "one", [json.dumps(batch), stamp], then=SendQuery("members", [json.dumps(conversation_ids)])
    )
    found: dict[int, Membership] = {}
    stored = []
    for n, pk, seq, rev, *row in sets[0]:
        membership = found.get(row[0])
        if membership is None:
            membership = found[row[0]] = rows.instance(db, Membership, row[:n_m])
            conversation_field.set_cached_value(
                membership, rows.instance(db, Conversation, row[n_m : n_m + n_c])
            )
        stored.append((n - 1, pk, seq, rev, membership))
    return stored, sets[1]


# Prepared statements (issue 19). The send batch's statements are long (the write's CTEs, the
# probe's correlated sub-select) and PostgreSQL parsed and planned each of them again for
# every batch: 0.4 ms of planning a batch of six (EXPLAIN ANALYZE: 0.21 ms the write, 0.19 ms
# the probe), on the path every message waits for, more than the write's own execution (0.41
# ms). Each connection that writes batches outside a transaction (the batcher's writer thread)
# prepares them once (`PREPARE`), then runs `EXECUTE name(...)`: still a simple-protocol query,
# so the write and its members read stay one query and one implicit transaction
# (`_messages_write`). CHAT SEND_PREPARED off: the full statements, as before (for a pooler
# that does not keep a session's prepared statements, such as PgBouncer in transaction mode).
_prepared: weakref.WeakSet = weakref.WeakSet()  # the psycopg connections that hold them


def _numbered(sql: str) -> str:
    """`sql` with its `%s` placeholders as PostgreSQL's `$1`, `$2`, ... (for PREPARE)."""
    parts = sql.split("%s")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


@cache
def _send_statements() -> dict[str, tuple[str, str]]:
    """ "write" / "probe" -> (statement name, its PREPARE). A name ends with a digest of its
    statement, so a session that outlived a deploy (a pooler in session mode) and holds an older
    version's statement under the old name never runs it for the new one."""
    bodies = {
        # The batch, then its time stamp (used twice: `$2` for both of the statement's %s).
        "write": "(jsonb, timestamptz) AS "
        + _numbered(_messages_write_sql("postgresql")).replace("$3", "$2"),
        "probe": "(jsonb) AS " + _numbered(_memberships_probe_sql("postgresql")),
        "one": "(jsonb, timestamptz) AS " + _numbered(_sends_write_sql("postgresql")),
        "members": "(jsonb) AS " + _numbered(current_members_by_public_id_sql("postgresql")),
    }
    statements = {}
    for kind, body in bodies.items():
        name = f"chat_send_{kind}_{hashlib.sha256(body.encode()).hexdigest()[:12]}"
        statements[kind] = (name, f"PREPARE {name} {body}")
    return statements


def _send_prepared(db: BaseDatabaseWrapper) -> bool:
    """Whether this batch runs the prepared statements, preparing them on a connection that
    has not got them yet: only outside a transaction, in autocommit, where a failed `EXECUTE`
    leaves nothing behind (`_executed`), and with client-side binding (the write's members read
    goes in the same simple-protocol query)."""
    if (
        db.vendor != "postgresql"
        or not settings.CHAT["SEND_PREPARED"]
        or db.in_atomic_block
        or not db.get_autocommit()
        or db.settings_dict["OPTIONS"].get("server_side_binding")
    ):
        return False
    raw = db.connection
    if raw in _prepared:
        return True
    with db.cursor() as cursor:
        # A connection that a pool hands out again may hold them already.
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)",
            [[name for name, _sql in _send_statements().values()]],
        )
        held = {name for (name,) in cursor.fetchall()}
        for name, sql in _send_statements().values():
            if name not in held:
                cursor.execute(sql)
    _prepared.add(raw)
    return True


def _executed(db: BaseDatabaseWrapper, cursor: Any, sql: str, params: list) -> None:
    """`cursor.execute` of a send statement; when it `EXECUTE`s a prepared one the session lost
    (`DISCARD ALL`, a pooler's server reset), prepared again and run once more. Outside a
    transaction the failed query stored nothing: each query is a transaction of its own. (The
    full statements never raise that error: for them this is `cursor.execute`.)"""
    try:
        cursor.execute(sql, params)
    except ProgrammingError as error:
        if getattr(error.__cause__, "sqlstate", None) != "26000":  # invalid_sql_statement_name
            raise
        _prepared.discard(db.connection)
        _send_prepared(db)
        cursor.execute(sql, params)


@dataclass(slots=True)
class SendQuery:
    """A step of the send batch (`sending.send_steps`): one of its statements on PostgreSQL,
    for a driver to run, outside any transaction. `kind` ("write", "probe", "one" or "members")
    names the statement, `params` are its prepared form's parameters (the full form of the
    write takes its time stamp twice) and `then` is a read to run in the same round trip (the
    members read after a write: SQL and parameters, or a send statement of its own). The driver answers with the statement's rows, then `then`'s: `run_send_query` on
    this thread's Django connection, or the realtime layer's event-loop driver on a connection
    of its own (gateway/writer.py)."""

    kind: str
    params: list
    then: tuple[str, list] | SendQuery | None = None

    def statement(self, prepared: bool, *, then: bool = True) -> tuple[str, list]:
        """The SQL and parameters to run: `EXECUTE` of the prepared statement, or the full
        statement; `then` appended (one simple-protocol query) unless told not to."""
        if prepared:
            sql = f"EXECUTE {_send_statements()[self.kind][0]}({', '.join(['%s'] * len(self.params))})"
            params = list(self.params)
        elif self.kind == "write":
            sql, params = _messages_write_sql("postgresql"), [*self.params, self.params[-1]]
        else:
            sql, params = _full_statement(self.kind), list(self.params)
        if then and self.then is not None:
            then_sql, then_params = self.then_statement(prepared)
            sql, params = f"{sql}; {then_sql}", [*params, *then_params]
        return sql, params

    def then_statement(self, prepared: bool) -> tuple[str, list]:
        """`then` as SQL and parameters (a send statement of its own when it is a `SendQuery`)."""
        assert self.then is not None
        return self.then.statement(prepared) if isinstance(self.then, SendQuery) else self.then


def _full_statement(kind: str) -> str:
    """The full text of a send statement that takes its parameters as given (not the write,
    which takes its time stamp twice: `SendQuery.statement`)."""
    return {
        "probe": _memberships_probe_sql,
        "one": _sends_write_sql,
        "members": current_members_by_public_id_sql,
    }[kind]("postgresql")


@dataclass(slots=True)
class Call:
    """A step of the send batch that goes through the ORM (`fn(*args)`, its result the step's
    answer): the rare parts (replies, retries, a lost race). The sync driver calls it in place;
    the event-loop driver on the database thread."""

    fn: Callable[..., Any]
    args: tuple


@dataclass(slots=True)
class Publish:
    """A step of the send batch: publish these items (`chatproject.bus.PublishItem`) once the
    batch is committed. The sync driver hands them to `publish_many_on_commit`; the event-loop
    driver, whose batch committed when its query returned, publishes them at once."""

    items: list


def send_statements_prepared() -> list[str]:
    """The `PREPARE` of each send statement (a connection of the event-loop driver runs them
    once)."""
    return [sql for _name, sql in _send_statements().values()]


def run_send_query(query: SendQuery) -> list[list[tuple]]:
    """Run a `SendQuery` on this thread's Django connection (the sync driver): the prepared
    form where the connection may hold it (`_send_prepared`), `then` in the same round trip
    with client-side binding, as a statement of its own otherwise."""
    db = connections[DEFAULT_DB_ALIAS]
    together = not db.settings_dict["OPTIONS"].get("server_side_binding")
    sql, params = query.statement(_send_prepared(db), then=together)
    with db.cursor() as cursor:
        _executed(db, cursor, sql, params)
        sets = [cursor.fetchall()]
        if query.then is not None:
            if together:
                cursor.nextset()
            else:
                cursor.execute(*query.then_statement(False))
            sets.append(cursor.fetchall())
    return sets


Steps = Generator["SendQuery | Call | Publish", Any, Any]


def _json_value(value: Any) -> Any:
    """json.dumps' fallback for the values a message row holds besides str, int and None."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a message row")


def _messages_write(
    values: Sequence[Sequence[Any]],
    memberships: Sequence[int],
    now,
    then: tuple[str, list] | None = None,
) -> Steps:
    """Steps (`SendQuery`, `Call`) that store a batch of messages: take each conversation's next seqs and revs (in batch order),
    insert the messages, and move each sender's read pointer (`memberships`, one per message)
    to their last message, never backwards. Returns (pk, seq, rev) per message, in order, and
    `then`'s rows.

    `values`: a row per message, a value for each of `message_insert_fields()` in that order
    (seq and rev are taken here; the rest adapted for the database). One statement on
    PostgreSQL; three elsewhere (`_take_seqs`, the insert, `_advance_read_pointers`).

    `then`: a read (sql, params) to run right after the write, in the same transaction, while
    the conversation rows are still locked (the send batch's members read); its rows are
    returned second. On PostgreSQL it travels in the write's own round trip: both statements
    go as one simple-protocol query, which PostgreSQL runs as one transaction when no
    transaction is open (so the caller may skip BEGIN and COMMIT, two more round trips: see
    `sending.message_send_many`), each statement with its own snapshot as in any READ
    COMMITTED transaction, so the read sees what committed before the locks were granted.
    That needs Django's default client-side parameter binding (OPTIONS server_side_binding
    unset); with server-side binding the read is a statement of its own.
    Hand-written instead of `bulk_create`, whose per-row preparation (`pre_save` and
    `get_db_prep_save` of every field, a model instance per row) was a third of a batched
    send's CPU, and as one statement: five round trips per batch (the seq allocation, the
    insert, the read pointers, and BEGIN and COMMIT around them) became one (issue 19).
    """
    seq_at, rev_at, conversation_at, public_id_at = _insert_positions()
    counts: dict[int, int] = {}
    ks = []
    for row in values:
        count = counts[row[conversation_at]] = counts.get(row[conversation_at], 0) + 1
        ks.append(count)
    if connection.vendor == "postgresql":
        stamp = connection.ops.adapt_datetimefield_value(now)
        keep = [i for i in range(len(values[0])) if i not in (seq_at, rev_at)]
        batch = json.dumps(
            [
                [*(row[i] for i in keep), membership, k]
                for row, membership, k in zip(values, memberships, ks, strict=True)
            ],
            default=_json_value,
        )
        sets = yield SendQuery("write", [batch, stamp], then)
        stored = {public_id: (pk, seq, rev) for pk, public_id, seq, rev in sets[0]}
        return [stored[row[public_id_at]] for row in values], (sets[1] if then is not None else [])
    return (yield Call(_messages_write_elsewhere, (values, memberships, now, then, counts, ks)))


def _messages_write_elsewhere(
    values: Sequence[Sequence[Any]],
    memberships: Sequence[int],
    now,
    then: tuple[str, list] | None,
    counts: dict[int, int],
    ks: list[int],
) -> tuple[list[tuple[int, int, int]], list[tuple]]:
    """`_messages_write` on a database other than PostgreSQL: three statements."""
    seq_at, rev_at, conversation_at, public_id_at = _insert_positions()
    last = _take_seqs(counts, now)
    rows_in, pointers = [], {}
    for row, k, membership in zip(values, ks, memberships, strict=True):
        row = list(row)
        last_seq, last_rev = last[row[conversation_at]]
        row[seq_at] = last_seq - counts[row[conversation_at]] + k
        row[rev_at] = last_rev - counts[row[conversation_at]] + k
        rows_in.append(row)
        pointers[membership] = max(pointers.get(membership, 0), row[seq_at])
    with connection.cursor() as cursor:
        cursor.execute(
            _messages_insert_sql(connection.vendor, len(rows_in)), [value for row in rows_in for value in row]
        )
        pks = dict((public_id, pk) for pk, public_id in cursor.fetchall())
    _advance_read_pointers(pointers)
    read = []
    if then is not None:
        with connection.cursor() as cursor:
            cursor.execute(*then)
            read = cursor.fetchall()
    return [(pks[row[public_id_at]], row[seq_at], row[rev_at]) for row in rows_in], read


def _memberships_of(user_ids: Sequence[int], conversation_ids: Sequence[str]) -> list[Membership]:
    """The current memberships of these users in these conversations (public ids), each with
    its conversation: one statement, instances made as a QuerySet makes them (`select_related`).
    Hand-written: through the ORM the query building and the two instances per row cost a
    quarter of a batched send's CPU (issue 19)."""
    m_fields, c_fields = rows.concrete_fields(Membership), rows.concrete_fields(Conversation)
    m, c = Membership._meta, Conversation._meta
    users_in, user_params = rows.any_of(connection, user_ids)
    conversations_in, conversation_params = rows.any_of(connection, conversation_ids)
    sql = (
        f"SELECT {rows.columns(connection, 'm', m_fields)}, {rows.columns(connection, 'c', c_fields)} "  # noqa: S608
        f"FROM {rows.table(connection, Membership)} m JOIN {rows.table(connection, Conversation)} c "
        f"ON {rows.q(connection, 'c', c.pk.column)} = {rows.q(connection, 'm', m.get_field('conversation').column)} "
        f"WHERE {rows.q(connection, 'm', m.get_field('user').column)} {users_in} "
        f"AND {rows.q(connection, 'c', c.get_field('public_id').column)} {conversations_in} "
        f"AND {rows.q(connection, 'm', m.get_field('left_at').column)} IS NULL"
    )
    found = []
    conversation_field = m.get_field("conversation")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*user_params, *conversation_params])
        for row in cursor.fetchall():
            membership = rows.instance(connection, Membership, row[: len(m_fields)])
            conversation_field.set_cached_value(
                membership, rows.instance(connection, Conversation, row[len(m_fields) :])
            )
            found.append(membership)
    return found


@cache
def _memberships_probe_sql(vendor: str) -> str:
    m, c, f = Membership._meta, Conversation._meta, Message._meta
    m_fields, c_fields = rows.concrete_fields(Membership), rows.concrete_fields(Conversation)
    qn = connection.ops.quote_name
    # The stored message as a correlated sub-select, not a LEFT JOIN: as the ON clause of an
    # outer join, its conditions did not let PostgreSQL use the partial idempotency index, and it
    # read every message of each conversation through the conversation index and filtered them
    # (EXPLAIN ANALYZE, 31,500 messages stored: 2,012 rows removed by the join filter for 10
    # keys). In a sub-select they are plain conditions on its own scan: one index lookup a key.
    return (
        f"SELECT {rows.columns(connection, 'm', m_fields)}, {rows.columns(connection, 'c', c_fields)}, "  # noqa: S608
        f"(SELECT x.{qn(f.pk.column)} FROM {rows.table(connection, Message)} x "
        f"WHERE x.{qn(f.get_field('conversation').column)} = c.{qn(c.pk.column)} "
        f"AND x.{qn(f.get_field('sender').column)} = k.u "
        f"AND x.{qn(f.get_field('client_message_id').column)} = k.cid), k.cid "
        "FROM (SELECT (e->>0)::bigint AS u, e->>1 AS c, e->>2 AS cid FROM jsonb_array_elements(%s::jsonb) AS t(e)) AS k "
        f"JOIN {rows.table(connection, Conversation)} c ON c.{qn(c.get_field('public_id').column)} = k.c "
        f"JOIN {rows.table(connection, Membership)} m ON m.{qn(m.get_field('conversation').column)} = "
        f"c.{qn(c.pk.column)} AND m.{qn(m.get_field('user').column)} = k.u "
        f"AND m.{qn(m.get_field('left_at').column)} IS NULL"
    )


def _memberships_and_stored(
    keys: Sequence[tuple[int, str, str | None]],
) -> Steps:
    """Steps that answer, for a send batch's (sender pk, conversation public id, client message id or None) keys:
    the senders' current memberships in those conversations, each with its conversation
    (`_memberships_of`), and the messages already stored under those client message ids
    (`_stored_client_ids`, the idempotency probe), keyed (conversation pk, sender pk, client
    message id). One statement on PostgreSQL, where the two were two round trips of the six
    a batch made (issue 19); the same two statements elsewhere.

    Only the exact pairs asked for are read (`_memberships_of` reads every sender in every
    conversation of the batch); the probe is one index lookup per key on the idempotency
    constraint's index, as `_stored_client_ids` is."""
    if connection.vendor != "postgresql":
        return (yield Call(_memberships_and_stored_elsewhere, (keys,)))
    n_m = len(rows.concrete_fields(Membership))
    n_c = len(rows.concrete_fields(Conversation))
    conversation_field = Membership._meta.get_field("conversation")
    found: dict[int, Membership] = {}
    stored: dict[tuple[int, int, str], int] = {}
    # The thread's connection itself, not the `connection` proxy: every attribute read through
    # the proxy is a lookup in asgiref's thread-local storage, and `rows.instance` makes two per
    # instance (84 proxy reads in a batch of 10, a tenth of its cProfile).
    db = connections[DEFAULT_DB_ALIAS]
    # The keys as one JSON parameter, not three arrays psycopg would quote in Python (as the
    # write does: `_messages_write_sql`).
    (found_rows,) = yield SendQuery("probe", [json.dumps(keys)])
    for row in found_rows:
        membership = found.get(row[0])
        if membership is None:
            membership = found[row[0]] = rows.instance(db, Membership, row[:n_m])
            conversation_field.set_cached_value(
                membership, rows.instance(db, Conversation, row[n_m : n_m + n_c])
            )
        message_pk, client_id = row[n_m + n_c :]
        if message_pk is not None:
            stored[(membership.conversation_id, membership.user_id, client_id)] = message_pk
    return list(found.values()), stored


def _memberships_and_stored_elsewhere(
    keys: Sequence[tuple[int, str, str | None]],
) -> tuple[list[Membership], dict[tuple[int, int, str], int]]:
    """`_memberships_and_stored` on a database other than PostgreSQL: two statements."""
    users = sorted({user for user, _c, _cid in keys})
    memberships = _memberships_of(users, sorted({c for _u, c, _cid in keys}))
    wanted = {(user, c) for user, c, _cid in keys}
    memberships = [mb for mb in memberships if (mb.user_id, mb.conversation.public_id) in wanted]
    by_pair = {(mb.user_id, mb.conversation.public_id): mb for mb in memberships}
    probe = [
        (by_pair[(user, c)].conversation_id, user, cid)
        for user, c, cid in keys
        if cid is not None and (user, c) in by_pair
    ]
    return memberships, _stored_client_ids(probe) if probe else {}


def _stored_client_ids(keys: Sequence[tuple[int, int, str]]) -> dict[tuple[int, int, str], int]:
    """(conversation pk, sender pk, client message id) -> the pk of the message stored with
    them, for those of `keys` that are stored: the idempotency probe of every send batch.

    One index lookup per key on the idempotency constraint's index, whatever the history: the
    probe it replaces (`conversation IN (...) AND client_message_id IN (...)`) read every
    message of the batch's conversations (PostgreSQL chose a sequential scan of the message
    table: 23 ms a batch with 134,000 messages stored, against 0.5 ms for this).
    """
    f = Message._meta
    columns = ", ".join(
        rows.q(connection, "m", f.get_field(name).column)
        for name in ("conversation", "sender", "client_message_id")
    )
    pk = rows.q(connection, "m", f.pk.column)
    table = rows.table(connection, Message)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT {columns}, {pk} FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS k(c, s, id) "  # noqa: S608
                f"JOIN {table} m ON ({columns}) = (k.c, k.s, k.id)",
                [list(column) for column in zip(*keys, strict=True)],
            )
        else:
            cursor.execute(
                f"SELECT {columns}, {pk} FROM {table} m WHERE ({columns}) IN "  # noqa: S608
                f"(VALUES {', '.join(['(%s, %s, %s)'] * len(keys))})",
                [value for key in keys for value in key],
            )
        return {
            (conversation_pk, sender_pk, client_id): pk
            for conversation_pk, sender_pk, client_id, pk in cursor.fetchall()
        }
