"""Conversation lists: the summaries a client shows (unread counts, partners), the snapshot a
new connection is greeted with, bus subscriptions and the unread total."""

from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

from django.conf import settings
from django.db import connection
from django.db.models import F

from accounts.models import LoginSession, User
from chatproject.core import rows

from ..models import ChatRequest, Conversation, Membership
from .access import direct_partner, membership_get


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    kind: str
    last_message_at: datetime
    last_seq: int
    last_read_seq: int
    unread: int
    partner_id: str | None
    partner_name: str | None
    title: str | None = None
    last_rev: int = 0  # the conversation's latest change (docs/protocol.md §14)


# The columns a conversation summary is built from: plain rows, no model instances (the
# handshake reads every membership of a user). Hand-written SQL (chatproject.core.rows): the
# handshake runs it, and through the ORM the query building cost more CPU than the rows.
@cache
def _summary_fields() -> tuple:
    conversation, membership = Conversation._meta, Membership._meta
    return (
        membership.get_field("conversation"),
        *(conversation.get_field(name) for name in ("public_id", "kind", "last_message_at", "last_seq")),
        *(conversation.get_field(name) for name in ("last_rev", "title")),
        membership.get_field("last_read_seq"),
    )


@cache
def _membership_rows_sql(vendor: str, kinds: int, by_session: bool = False) -> str:
    """Current memberships of a user (`%s`: its pk; `by_session`: the id of one of its login
    sessions), most recent activity first; `kinds`: how many `%s` placeholders for conversation
    kinds (0: every kind)."""
    c, m = Conversation._meta, Membership._meta
    fields = _summary_fields()
    select = ", ".join(
        rows.q(connection, "m" if field.model is Membership else "c", field.column) for field in fields
    )
    user = "%s"
    if by_session:
        s = LoginSession._meta
        user = (
            f"(SELECT {rows.q(connection, 's', s.get_field('user').column)} "
            f"FROM {rows.table(connection, LoginSession)} s "
            f"WHERE {rows.q(connection, 's', s.get_field('sid').column)} = %s)"
        )
    where = [
        f"{rows.q(connection, 'm', m.get_field('user').column)} = {user}",
        f"{rows.q(connection, 'm', m.get_field('left_at').column)} IS NULL",
    ]
    if kinds:
        where.append(
            f"{rows.q(connection, 'c', c.get_field('kind').column)} IN ({', '.join(['%s'] * kinds)})"
        )
    return (
        f"SELECT {select} FROM {rows.table(connection, Membership)} m "
        f"JOIN {rows.table(connection, Conversation)} c "
        f"ON {rows.q(connection, 'c', c.pk.column)} = {rows.q(connection, 'm', m.get_field('conversation').column)} "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY {rows.q(connection, 'c', c.get_field('last_message_at').column)} DESC, "
        f"{rows.q(connection, 'm', m.get_field('conversation').column)} DESC"
    )


def _membership_rows(user: User, kinds: tuple[str, ...] | None, limit: int | None = None) -> list[tuple]:
    """(conversation pk, public_id, kind, last_message_at, last_seq, last_rev, title,
    last_read_seq) of each current membership of `user`, most recent activity first."""
    kinds = tuple(str(kind) for kind in kinds or ())
    sql = _membership_rows_sql(connection.vendor, len(kinds))
    params: list = [user.pk, *kinds]
    if limit is not None:
        sql, params = f"{sql} LIMIT %s", [*params, limit]
    fields = _summary_fields()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(rows.converted(connection, fields, row)) for row in cursor.fetchall()]


def conversation_list_for_user(
    *, user: User, kinds: tuple[str, ...] | None = None
) -> list[ConversationSummary]:
    """The user's current conversations, most recent activity first, with unread counts.

    Two queries whatever the number of conversations: memberships with conversations, then the
    partners of the direct ones. Bounded by CHAT CONVERSATION_LIST_LIMIT.
    """
    found = _membership_rows(user, kinds, settings.CHAT["CONVERSATION_LIST_LIMIT"])
    return _summaries(user, found)


@dataclass(frozen=True)
class ConversationSnapshot:
    """What a new connection needs at once: the group conversations to subscribe to (all of
    them) and the conversation list to greet it with (the CONVERSATION_LIST_LIMIT most recent)."""

    group_ids: list[str]
    summaries: list[ConversationSummary]


def conversation_snapshot_for_user(*, user: User, kinds: tuple[str, ...]) -> ConversationSnapshot:
    """`conversation_ids_for_user` (groups) and `conversation_list_for_user(kinds)` from one
    read of the memberships, as plain rows (two queries in all): a handshake pays once."""
    found = _membership_rows(user, kinds)
    group_ids = [row[1] for row in found if row[2] == Conversation.Kind.GROUP]
    return ConversationSnapshot(
        group_ids, _summaries(user, found[: settings.CHAT["CONVERSATION_LIST_LIMIT"]])
    )


@lru_cache(maxsize=128)  # one statement per number of direct chats: bounded
def _direct_partners_sql(vendor: str, count: int) -> str:
    m, u = Membership._meta, User._meta
    conversation = rows.q(connection, "m", m.get_field("conversation").column)
    member = rows.q(connection, "m", m.get_field("user").column)
    return (
        f"SELECT {conversation}, {rows.q(connection, 'u', u.get_field('public_id').column)}, "
        f"{rows.q(connection, 'u', u.get_field('display_name').column)} "
        f"FROM {rows.table(connection, Membership)} m "
        f"JOIN {rows.table(connection, User)} u ON {rows.q(connection, 'u', u.pk.column)} = {member} "
        f"WHERE {conversation} IN ({', '.join(['%s'] * count)}) AND {member} <> %s"
    )


def _direct_partners(user: User, direct_ids: list[int]) -> dict[int, tuple[str, str]]:
    """conversation pk -> (public_id, display_name) of the other member of each direct chat
    (every membership row, current or left, as before). Hand-written SQL, as above."""
    partners: dict[int, tuple[str, str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_direct_partners_sql(connection.vendor, len(direct_ids)), [*direct_ids, user.pk])
        for conv_id, public_id, name in cursor.fetchall():
            partners[conv_id] = (public_id, name)
    return partners


# The handshake's read on the event loop (gateway/reader.py) runs these statements itself, in
# two round trips at most: the memberships with the session check, then (only if the user has
# direct chats) their partners and their pending requests together. The Python around them is
# the thread path's (`conversation_snapshot_for_user`).
Statement = tuple[str, list]


def snapshot_statement(*, session_id: str, kinds: tuple[str, ...]) -> Statement:
    """The memberships read of `conversation_snapshot_for_user`, for the user whose login
    session is `session_id`: it needs no user pk, so it goes with the session check."""
    kinds = tuple(str(kind) for kind in kinds)
    return _membership_rows_sql(connection.vendor, len(kinds), True), [session_id, *kinds]


def snapshot_rows(raw: list[tuple]) -> list[tuple]:
    """Rows of `snapshot_statement` as `_membership_rows` gives them (converted)."""
    fields = _summary_fields()
    return [tuple(rows.converted(connection, fields, row)) for row in raw]


def snapshot_partner_statements(*, user: User, found: list[tuple]) -> list[Statement]:
    """What `_summaries` reads of the direct chats among the greeting's rows: their partners,
    and the recipients of the user's requests not accepted yet (the thread path asks for
    these only when a partner is missing; here they go in the same round trip). None without
    a direct chat."""
    direct_ids = _direct_ids(found[: settings.CHAT["CONVERSATION_LIST_LIMIT"]])
    if not direct_ids:
        return []
    return [
        (_direct_partners_sql(connection.vendor, len(direct_ids)), [*direct_ids, user.pk]),
        (_requested_sql(connection.vendor, len(direct_ids)), [*direct_ids, user.pk]),
    ]


@lru_cache(maxsize=128)
def _requested_sql(vendor: str, count: int) -> str:
    r, u = ChatRequest._meta, User._meta
    conversation = rows.q(connection, "r", r.get_field("conversation").column)
    return (
        f"SELECT {conversation}, {rows.q(connection, 'u', u.get_field('public_id').column)}, "
        f"{rows.q(connection, 'u', u.get_field('display_name').column)} "
        f"FROM {rows.table(connection, ChatRequest)} r "
        f"JOIN {rows.table(connection, User)} u "
        f"ON {rows.q(connection, 'u', u.pk.column)} = {rows.q(connection, 'r', r.get_field('recipient').column)} "
        f"WHERE {conversation} IN ({', '.join(['%s'] * count)}) "
        f"AND {rows.q(connection, 'r', r.get_field('requester').column)} = %s"
    )


def snapshot_from(found: list[tuple], partner_sets: list[list[tuple]] | None = None) -> ConversationSnapshot:
    """`conversation_snapshot_for_user`'s result from its rows: `found` (`snapshot_rows`) and
    the answers to `snapshot_partner_statements` (partners, then requests)."""
    partners: dict[int, tuple[str, str]] = {}
    if partner_sets:
        members, requested = partner_sets
        for conv_id, public_id, name in requested:  # a member partner, if any, wins (below)
            partners[conv_id] = (public_id, name)
        for conv_id, public_id, name in members:
            partners[conv_id] = (public_id, name)
    group_ids = [row[1] for row in found if row[2] == Conversation.Kind.GROUP]
    return ConversationSnapshot(
        group_ids, _summary_list(found[: settings.CHAT["CONVERSATION_LIST_LIMIT"]], partners)
    )


def _direct_ids(found: list[tuple]) -> list[int]:
    return [row[0] for row in found if row[2] == Conversation.Kind.DIRECT]


def _summaries(user: User, found: list[tuple]) -> list[ConversationSummary]:
    """Summaries of membership rows (`_membership_rows`), in their order; one query for the
    partners of the direct ones."""
    direct_ids = _direct_ids(found)
    partners: dict[int, tuple[str, str]] = {}
    if direct_ids:
        partners = _direct_partners(user, direct_ids)
        # A request not accepted yet: its recipient is no member, but is the requester's partner.
        waiting = [pk for pk in direct_ids if pk not in partners]
        if waiting:
            for conv_id, public_id, name in ChatRequest.objects.filter(
                conversation_id__in=waiting, requester=user
            ).values_list("conversation_id", "recipient__public_id", "recipient__display_name"):
                partners[conv_id] = (public_id, name)
    return _summary_list(found, partners)


def _summary_list(found: list[tuple], partners: dict[int, tuple[str, str]]) -> list[ConversationSummary]:
    result = []
    for pk, public_id, kind, last_message_at, last_seq, last_rev, title, last_read_seq in found:
        partner = partners.get(pk)
        result.append(
            ConversationSummary(
                id=public_id,
                kind=kind,
                last_message_at=last_message_at,
                last_seq=last_seq,
                last_read_seq=last_read_seq,
                unread=max(last_seq - last_read_seq, 0),
                partner_id=partner[0] if partner else None,
                partner_name=partner[1] if partner else None,
                title=title or None,
                last_rev=last_rev,
            )
        )
    return result


def conversation_summary_get(*, user: User, conversation_id: object) -> ConversationSummary:
    """One current conversation of the user, in the shape of `conversation_list_for_user`."""
    membership = membership_get(user=user, conversation_id=conversation_id)
    conversation = membership.conversation
    partner = (
        direct_partner(conversation=conversation, user=user)
        if conversation.kind == Conversation.Kind.DIRECT
        else None
    )
    return ConversationSummary(
        id=conversation.public_id,
        kind=conversation.kind,
        last_message_at=conversation.last_message_at,
        last_seq=conversation.last_seq,
        last_read_seq=membership.last_read_seq,
        unread=max(conversation.last_seq - membership.last_read_seq, 0),
        partner_id=partner.public_id if partner else None,
        partner_name=partner.display_name if partner else None,
        title=conversation.title or None,
        last_rev=conversation.last_rev,
    )


def unread_total(*, user: User) -> int:
    values = Membership.objects.filter(user=user, left_at__isnull=True).values_list(
        F("conversation__last_seq") - F("last_read_seq"), flat=True
    )
    return sum(max(v, 0) for v in values)


def conversation_ids_for_user(*, user: User, kinds: tuple[str, ...]) -> list[str]:
    """Public ids of the user's current conversations of these kinds (bus subscriptions)."""
    return list(
        Membership.objects.filter(user=user, left_at__isnull=True, conversation__kind__in=kinds).values_list(
            "conversation__public_id", flat=True
        )
    )
