"""A page of history in hand-written SQL (chatproject.core.rows), in two round trips: the
caller's membership, the page and (for conversation pages) the members' read pointers in the
first; the senders and the page's reactions in the second.

The page is made of the instances a QuerySet with `prefetch_related("sender",
"reply_to__sender", "attachment")` made, and every consumer reads them as before. Through the
ORM, building the queries and prefetching cost about 8 ms of CPU for a page of 50 on the bench
machine, against 0.7 ms for the page's query alone; each round trip then cost 0.13 ms of CPU and
a wait that, on a busy machine, is where the slow calls come from (bench/README.md, session 5).
So the statements of one round trip go together as one simple-protocol query (PostgreSQL with
Django's default client-side binding, as the send batch's write and read do); elsewhere they
run one by one.

The first round trip's statements find the conversation from the caller's membership
themselves (a scalar sub-select each, evaluated once before the page's index scan), so they
read nothing of a conversation the caller is not in; the caller checks the membership's rules
(`access.membership_checked`) before using anything they read. The quoted messages and the
attachments are joined, not prefetched: their columns are NULL on rows without them.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from accounts.models import User
from chatproject.core import rows

from ..models import Attachment, Conversation, Membership, Message, Reaction
from .access import membership_of_row, membership_sql

# No sequence number is larger: the bound of a member who never left.
SEQ_MAX = 2**63 - 1

# What a page's first round trip also reads of the conversation's members.
POINTERS = "pointers"  # (user pk, public id, last read seq, receipts enabled) of current members
MEMBERS = "members"  # every membership, current or left, and its user (a direct chat's two)


def fetched(db: BaseDatabaseWrapper, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple]]:
    """The rows of each statement, in one round trip where the connection allows it."""
    found: list[list[tuple]] = []
    together = (
        len(statements) > 1
        and db.vendor == "postgresql"
        and not db.settings_dict["OPTIONS"].get("server_side_binding")
    )
    with db.cursor() as cursor:
        if together:
            cursor.execute("; ".join(sql for sql, _ in statements), [p for _, ps in statements for p in ps])
            found.append(cursor.fetchall())
            for _ in statements[1:]:
                cursor.nextset()
                found.append(cursor.fetchall())
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
                found.append(cursor.fetchall())
    return found


@cache
def _conversation_of_member_sql(vendor: str) -> str:
    """`(SELECT <column of the membership> ...)` for `%s` the user's pk, `%s` the conversation's
    public id: a scalar sub-select, NULL when the user is no member."""
    m, c = Membership._meta, Conversation._meta
    db = connections[DEFAULT_DB_ALIAS]
    return (
        f"FROM {rows.table(db, Membership)} k JOIN {rows.table(db, Conversation)} kc "
        f"ON {rows.q(db, 'kc', c.pk.column)} = {rows.q(db, 'k', m.get_field('conversation').column)} "
        f"WHERE {rows.q(db, 'k', m.get_field('user').column)} = %s "
        f"AND {rows.q(db, 'kc', c.get_field('public_id').column)} = %s"
    )


@cache
def _page_sql(vendor: str, before: bool, after: bool) -> str:
    """A page of the conversation `%s, %s` (user pk, public id) names, up to where the member
    left (`%s, %s` again, and SEQ_MAX), (`%s` before) (`%s` after), `%s` rows: each message's
    columns, then the quoted message's, then the attachment's."""
    f, a, m = Message._meta, Attachment._meta, Membership._meta
    db = connections[DEFAULT_DB_ALIAS]
    fields, attachment_fields = rows.concrete_fields(Message), rows.concrete_fields(Attachment)
    member = _conversation_of_member_sql(vendor)
    conversation = rows.q(db, "k", m.get_field("conversation").column)
    left_seq = rows.q(db, "k", m.get_field("left_seq").column)

    def col(name: str) -> str:
        return rows.q(db, "m", f.get_field(name).column)

    where = [
        f"{col('conversation')} = (SELECT {conversation} {member})",
        f"{col('seq')} <= (SELECT COALESCE({left_seq}, %s) {member})",
    ]
    where += [f"{col('seq')} < %s"] if before else []
    where += [f"{col('seq')} > %s"] if after else []
    return (
        f"SELECT {rows.columns(db, 'm', fields)}, {rows.columns(db, 'r', fields)}, "  # noqa: S608
        f"{rows.columns(db, 'a', attachment_fields)} FROM {rows.table(db, Message)} m "
        f"LEFT JOIN {rows.table(db, Message)} r ON {rows.q(db, 'r', f.pk.column)} = {col('reply_to')} "
        f"LEFT JOIN {rows.table(db, Attachment)} a ON {rows.q(db, 'a', a.pk.column)} = {col('attachment')} "
        f"WHERE {' AND '.join(where)} ORDER BY {col('seq')} {'ASC' if after else 'DESC'} LIMIT %s"
    )


@cache
def members_sql(vendor: str, members: str, of_member: bool) -> str:
    """The conversation's members' rows (POINTERS or MEMBERS, see above; MEMBERS: each row then
    goes on with whether the membership is current (its left_at) and the user's columns), in the
    order of the memberships' pks. `%s`: the conversation's pk, or with `of_member` the user's pk
    and the conversation's public id of a membership."""
    m, u = Membership._meta, User._meta
    db = connections[DEFAULT_DB_ALIAS]
    left_at = rows.q(db, "m", m.get_field("left_at").column)
    select = [
        rows.q(db, "m", m.get_field("user").column),
        rows.q(db, "u", u.get_field("public_id").column),
        rows.q(db, "m", m.get_field("last_read_seq").column),
        rows.q(db, "u", u.get_field("read_receipts_enabled").column),
    ]
    if members == MEMBERS:
        select += [left_at, rows.columns(db, "u", rows.concrete_fields(User))]
    conversation = (
        f"(SELECT {rows.q(db, 'k', m.get_field('conversation').column)} {_conversation_of_member_sql(vendor)})"
        if of_member
        else "%s"
    )
    return (
        f"SELECT {', '.join(select)} FROM {rows.table(db, Membership)} m "  # noqa: S608
        f"JOIN {rows.table(db, User)} u ON {rows.q(db, 'u', u.pk.column)} = {rows.q(db, 'm', m.get_field('user').column)} "
        f"WHERE {rows.q(db, 'm', m.get_field('conversation').column)} = {conversation} "
        + (f"AND {left_at} IS NULL " if members == POINTERS else "")
        + f"ORDER BY {rows.q(db, 'm', m.pk.column)}"
    )


def page_read(
    db: BaseDatabaseWrapper,
    *,
    user_pk: int,
    conversation_id: str,
    before: int | None,
    after: int | None,
    limit: int,
    members: str | None = None,
) -> tuple[Membership | None, list[Message], list[tuple]]:
    """The first round trip: the caller's membership (None if not a member), the page (newest
    first, oldest first with `after`) with the quoted messages and attachments cached on its
    messages, and the `members` rows (`members_sql`) when asked for."""
    # Bounds past any sequence number (a socket client's JSON integer may be): as the ORM read
    # them, no bound before, nothing after (and no integer the database driver cannot take).
    if before is not None and before > SEQ_MAX:
        before = None
    if after is not None and after > SEQ_MAX:
        after = SEQ_MAX
    key = [user_pk, conversation_id]
    params = [*key, SEQ_MAX, *key]
    params += [value for value in (before, after) if value is not None]
    statements = [
        (membership_sql(db.vendor), key),
        (_page_sql(db.vendor, before is not None, after is not None), [*params, limit]),
    ]
    if members is not None:
        statements.append((members_sql(db.vendor, members, True), key))
    found = fetched(db, statements)
    membership = membership_of_row(db, found[0][0]) if found[0] else None
    return membership, _messages(db, found[1]), found[2] if members is not None else []


def _messages(db: BaseDatabaseWrapper, found: list[tuple]) -> list[Message]:
    n = len(rows.concrete_fields(Message))
    message, attachment = rows.maker(db, Message), rows.maker(db, Attachment)
    reply_field, attachment_field = Message.reply_to.field, Message.attachment.field
    messages = []
    for row in found:
        m = message(row[:n])
        messages.append(m)
        if m.reply_to_id is not None:
            reply_field.set_cached_value(m, message(row[n : 2 * n]))
        if m.attachment_id is not None:
            file = attachment(row[2 * n :])
            attachment_field.set_cached_value(m, file)
            attachment_field.remote_field.set_cached_value(file, m)
    return messages


@cache
def _users_sql(vendor: str) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    return (
        f"SELECT {rows.columns(db, 'u', rows.concrete_fields(User))} "  # noqa: S608
        f"FROM {rows.table(db, User)} u WHERE {rows.q(db, 'u', User._meta.pk.column)} "
    )


@cache
def _reactions_sql(vendor: str) -> tuple[str, str]:
    """The grouped reactions query around `message_id <in the page>` (`%s` first: the viewer's
    pk): per message and emoji, the count and how many are the viewer's, most used first."""
    r = Reaction._meta
    db = connections[DEFAULT_DB_ALIAS]
    message = rows.q(db, "r", r.get_field("message").column)
    emoji = rows.q(db, "r", r.get_field("emoji").column)
    count = f"COUNT({rows.q(db, 'r', r.pk.column)})"
    mine = f"COUNT(CASE WHEN {rows.q(db, 'r', r.get_field('user').column)} = %s THEN 1 END)"
    return (
        f"SELECT {message}, {emoji}, {count}, {mine} FROM {rows.table(db, Reaction)} r WHERE {message}",  # noqa: S608
        f"GROUP BY {message}, {emoji} ORDER BY {message} ASC, {count} DESC, {emoji} ASC",
    )


def reactions_statement(db: BaseDatabaseWrapper, message_pks: list[int], viewer_pk: int) -> tuple[str, list]:
    """(message pk, emoji, count, the viewer's count) rows of these messages' reactions."""
    where, params = rows.any_of(db, message_pks)
    select, group = _reactions_sql(db.vendor)
    return f"{select} {where} {group}", [viewer_pk, *params]


def senders_and_reactions(
    db: BaseDatabaseWrapper, messages: list[Message], *, reactions_of: list[int], viewer_pk: int
) -> list[tuple]:
    """The second round trip: each message's and quoted message's sender cached on it (each
    distinct sender made once), and the reaction rows of `reactions_of` (message pks; none read
    when empty)."""
    quoted = [m.reply_to for m in messages if m.reply_to_id is not None]
    everyone = messages + quoted
    pks = sorted({m.sender_id for m in everyone} - {None})
    statements = []
    if pks:
        where, params = rows.any_of(db, pks)
        statements.append((_users_sql(db.vendor) + where, params))
    if reactions_of:
        statements.append(reactions_statement(db, reactions_of, viewer_pk))
    found = fetched(db, statements)
    if pks:
        user = rows.maker(db, User)
        senders = {u.pk: u for u in map(user, found[0])}
        sender_field = Message.sender.field
        for m in everyone:
            if m.sender_id is not None:
                sender_field.set_cached_value(m, senders.get(m.sender_id))
    return found[-1] if reactions_of else []
