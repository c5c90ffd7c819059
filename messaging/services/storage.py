"""Statements the write paths share: the conversation's sequence and revision allocators (see
the `Conversation` model), the insert of a batch of messages and the move of read pointers.
Call inside a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

from django.db import connection

from chatproject.core import rows

from ..models import Conversation, Membership, Message


def _take_seqs(counts: dict[int, int], now) -> dict[int, tuple[int, int]]:
    """Bump each conversation's allocators by its count; returns conversation pk -> (new
    last_seq, new last_rev).

    One UPDATE ... RETURNING, which also locks the rows until commit, so concurrent senders
    queue here and numbers stay gapless. A new message is a change too, so `last_rev` moves by
    the same count in the same statement. `last_message_at` only moves forward.
    """
    table = connection.ops.quote_name(Conversation._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    ids = sorted(counts)
    moved_at = "CASE WHEN last_message_at > %s THEN last_message_at ELSE %s END"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two array parameters: the statement text is the same for every batch size, so
            # the driver does not re-parse a long CASE list each time.
            cursor.execute(
                f"UPDATE {table} AS c SET last_seq = c.last_seq + v.n, last_rev = c.last_rev + v.n, "  # noqa: S608
                f"last_message_at = {moved_at.replace('last_message_at', 'c.last_message_at')} "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, n) WHERE c.id = v.id "
                "RETURNING c.id, c.last_seq, c.last_rev",
                [stamp, stamp, ids, [counts[pk] for pk in ids]],
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
    `_messages_insert` takes, and (with the key first) the order `Model.from_db` takes them in."""
    return tuple(f for f in rows.concrete_fields(Message) if not f.primary_key)


@lru_cache(maxsize=64)  # PostgreSQL: one statement; SQLite: one per batch size (bounded)
def _messages_insert_sql(vendor: str, count: int) -> str:
    fields = message_insert_fields()
    table = rows.table(connection, Message)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    returning = (
        f"{connection.ops.quote_name(Message._meta.pk.column)}, "
        f"{connection.ops.quote_name(Message._meta.get_field('public_id').column)}"
    )
    if vendor == "postgresql":
        # One array per column: the statement text is the same for every batch size. In the
        # given order (ORDINALITY), so that a conversation's seqs are inserted in order.
        types = [(f.rel_db_type(connection) if f.is_relation else f.db_type(connection)) for f in fields]
        arrays = ", ".join(f"%s::{kind.split('(')[0]}[]" for kind in types)
        return (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM unnest({arrays}) "  # noqa: S608
            f"WITH ORDINALITY AS v({names}, n) ORDER BY n RETURNING {returning}"
        )
    row = f"({', '.join(['%s'] * len(fields))})"
    return f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * count)} RETURNING {returning}"  # noqa: S608


def _messages_insert(values: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Insert messages, one statement for the batch; returns public id -> primary key.

    `values`: one row per message, a value for each of `message_insert_fields()` (in that
    order, already adapted for the database). Hand-written instead of `bulk_create`, whose
    per-row preparation (`pre_save` and `get_db_prep_save` of every field, a model instance
    per row) was a third of a batched send's CPU (issue 19).
    """
    postgres = connection.vendor == "postgresql"
    sql = _messages_insert_sql(connection.vendor, 0 if postgres else len(values))
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(sql, [list(column) for column in zip(*values, strict=True)])
        else:
            cursor.execute(sql, [value for row in values for value in row])
        return {public_id: pk for pk, public_id in cursor.fetchall()}


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
