"""Who receives a conversation's events: the one place the services ask.

A group conversation publishes to its own bus group (the gateway subscribes each member's
connections to it when they join and unsubscribes them when they leave). Direct and self
conversations have no bus group: their events go to the user groups of their current members
(memberships whose `left_at` is null), read from the database every time. There is no cache on
purpose: once someone can leave a two-person room, a cached member list would keep sending them
its events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection

from accounts.models import User
from chatproject.bus import PublishItem, publish_on_commit

from ..models import Conversation, Membership


@dataclass(frozen=True)
class Audience:
    """The bus audience of one conversation, as `publish_on_commit` takes it: user public ids
    (direct and self conversations) or the conversation's own public id (groups)."""

    user_ids: tuple[str, ...] = ()
    conversation_ids: tuple[str, ...] = ()


def _by_conversation_group(conversation: Conversation) -> bool:
    return conversation.kind == Conversation.Kind.GROUP


def _current_members_statement(conversation_pks: Sequence[int]) -> tuple[str, list]:
    """The statement that reads the current members of these conversations (public ids, in
    order of joining); `_current_members_result` turns its rows into a dict.

    A plain statement, not the ORM: every send batch to a direct chat runs it, and building the
    equivalent queryset cost 0.32 ms of CPU per call against 0.02 ms for this (measured on
    SQLite), a tenth of a whole single send."""
    memberships = connection.ops.quote_name(Membership._meta.db_table)
    users = connection.ops.quote_name(User._meta.db_table)
    return (
        f"SELECT m.conversation_id, u.public_id FROM {memberships} AS m "  # noqa: S608
        f"JOIN {users} AS u ON u.id = m.user_id "
        f"WHERE m.left_at IS NULL AND m.conversation_id IN ({', '.join(['%s'] * len(conversation_pks))}) "
        "ORDER BY m.conversation_id, m.id",
        list(conversation_pks),
    )


@cache
def current_members_by_public_id_sql(vendor: str) -> str:
    """PostgreSQL: `_current_members_statement` for the direct and self conversations among the
    given public ids (one JSON array parameter; groups are left out, their audience is their
    bus group), for the one-statement send (`storage._sends_write`), which learns the
    conversations' pks and kinds only from its own write. Rows of conversations that got no
    message are the caller's to drop (`AudiencesRead.result_of`).

    Index lookups by construction (LATERAL), and the ids as JSON, not an array: a prepared
    statement over an array parameter was planned again at every run (a generic plan costed
    for ten elements loses to a custom one for the batch's one or two: 0.17 ms of planning for
    0.04 ms of execution on the bench machine), and a join the planner may hash scanned
    the whole membership table of a small database for each batch (`OFFSET 0` keeps the
    memberships' sub-select from being pulled up into such a join)."""
    qn = connection.ops.quote_name
    c, m = Conversation._meta, Membership._meta
    return (
        f"SELECT m.{qn(m.get_field('conversation').column)}, u.{qn(User._meta.get_field('public_id').column)} "  # noqa: S608
        "FROM jsonb_array_elements_text(%s::jsonb) AS p(public_id) "
        f"CROSS JOIN LATERAL (SELECT c.{qn(c.pk.column)} AS id FROM {qn(c.db_table)} AS c "
        f"WHERE c.{qn(c.get_field('public_id').column)} = p.public_id "
        f"AND c.{qn(c.get_field('kind').column)} <> '{Conversation.Kind.GROUP.value}' LIMIT 1) AS c "
        f"CROSS JOIN LATERAL (SELECT m.{qn(m.pk.column)}, m.{qn(m.get_field('conversation').column)}, "
        f"m.{qn(m.get_field('user').column)} FROM {qn(m.db_table)} AS m "
        f"WHERE m.{qn(m.get_field('conversation').column)} = c.id AND m.{qn(m.get_field('left_at').column)} IS NULL OFFSET 0) AS m "
        f"JOIN {qn(User._meta.db_table)} AS u ON u.{qn(User._meta.pk.column)} = m.{qn(m.get_field('user').column)} "
        f"ORDER BY m.{qn(m.get_field('conversation').column)}, m.{qn(m.pk.column)}"
    )


def _current_members_result(
    conversation_pks: Iterable[int], rows: Iterable[Sequence[Any]]
) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {pk: [] for pk in conversation_pks}
    for conversation_pk, user_id in rows:
        found[conversation_pk].append(user_id)
    return {pk: tuple(members) for pk, members in found.items()}


@dataclass(frozen=True)
class AudiencesRead:
    """`conversation_audiences` in two halves, for a caller that runs the members read in the
    same round trip as its own write (the send batch, `sending._messages_store`): `statement`
    (None when every conversation is a group: nothing to read), then `result` with its rows."""

    groups: dict[int, Audience]
    member_pks: tuple[int, ...]  # the direct and self conversations, sorted

    @property
    def statement(self) -> tuple[str, list] | None:
        return _current_members_statement(self.member_pks) if self.member_pks else None

    def result(self, rows: Iterable[Sequence[Any]]) -> dict[int, Audience]:
        audiences = dict(self.groups)
        for pk, user_ids in _current_members_result(self.member_pks, rows).items():
            audiences[pk] = Audience(user_ids=user_ids)
        return audiences

    def result_of(self, rows: Iterable[Sequence[Any]]) -> dict[int, Audience]:
        """`result` of rows that may hold other conversations' members too (those of
        `current_members_by_public_id_sql`): only this read's conversations are kept."""
        wanted = set(self.member_pks)
        return self.result([row for row in rows if row[0] in wanted])


def conversation_audiences_read(conversations: Iterable[Conversation]) -> AudiencesRead:
    """The `AudiencesRead` of these conversations (no query yet)."""
    groups: dict[int, Audience] = {}
    others: set[int] = set()
    for conversation in conversations:
        if _by_conversation_group(conversation):
            groups[conversation.pk] = Audience(conversation_ids=(conversation.public_id,))
        else:
            others.add(conversation.pk)
    return AudiencesRead(groups, tuple(sorted(others)))


def conversation_audiences(conversations: Iterable[Conversation]) -> dict[int, Audience]:
    """conversation pk -> its `Audience`, for many conversations at once (a send batch): one
    query for all the direct and self ones among them, none when they are all groups. Call it
    inside the transaction that made the change, so the members are those of that moment."""
    read = conversation_audiences_read(conversations)
    statement = read.statement
    if statement is None:
        return read.result(())
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        return read.result(cursor.fetchall())


def conversation_audience(conversation: Conversation) -> Audience:
    """The audience of one conversation's events (a query for direct and self ones)."""
    return conversation_audiences([conversation])[conversation.pk]


def publish_item(event: dict[str, Any], audience: Audience) -> PublishItem:
    """The `PublishItem` for `publish_many_on_commit` (the batched send path builds one per
    message from `conversation_audiences`)."""
    return PublishItem(event, user_ids=audience.user_ids, conversation_ids=audience.conversation_ids)


def publish_to_conversation(conversation: Conversation, event: dict[str, Any]) -> None:
    """Publish `event` to the conversation's audience once the current transaction commits."""
    audience = conversation_audience(conversation)
    publish_on_commit(event, user_ids=audience.user_ids, conversation_ids=audience.conversation_ids)
