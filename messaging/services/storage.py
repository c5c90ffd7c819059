"""Statements the write paths share: the conversation's sequence and revision allocators (see
the `Conversation` model) and the move of read pointers. Call inside a transaction."""

from __future__ import annotations

from django.db import connection

from ..models import Conversation, Membership


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
