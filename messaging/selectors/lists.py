"""Conversation lists: the summaries a client shows (unread counts, partners), the snapshot a
new connection is greeted with, bus subscriptions and the unread total."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import F

from accounts.models import User

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
# handshake reads every membership of a user).
_SUMMARY_COLUMNS = (
    "conversation_id",
    "conversation__public_id",
    "conversation__kind",
    "conversation__last_message_at",
    "conversation__last_seq",
    "conversation__last_rev",
    "conversation__title",
    "last_read_seq",
)
_RECENT_FIRST = ("-conversation__last_message_at", "-conversation_id")


def _membership_rows(user: User, kinds: tuple[str, ...] | None):
    memberships = Membership.objects.filter(user=user, left_at__isnull=True)
    if kinds:
        memberships = memberships.filter(conversation__kind__in=kinds)
    return memberships.order_by(*_RECENT_FIRST).values_list(*_SUMMARY_COLUMNS)


def conversation_list_for_user(
    *, user: User, kinds: tuple[str, ...] | None = None
) -> list[ConversationSummary]:
    """The user's current conversations, most recent activity first, with unread counts.

    Two queries whatever the number of conversations: memberships with conversations, then the
    partners of the direct ones. Bounded by CHAT CONVERSATION_LIST_LIMIT.
    """
    rows = list(_membership_rows(user, kinds)[: settings.CHAT["CONVERSATION_LIST_LIMIT"]])
    return _summaries(user, rows)


@dataclass(frozen=True)
class ConversationSnapshot:
    """What a new connection needs at once: the group conversations to subscribe to (all of
    them) and the conversation list to greet it with (the CONVERSATION_LIST_LIMIT most recent)."""

    group_ids: list[str]
    summaries: list[ConversationSummary]


def conversation_snapshot_for_user(*, user: User, kinds: tuple[str, ...]) -> ConversationSnapshot:
    """`conversation_ids_for_user` (groups) and `conversation_list_for_user(kinds)` from one
    read of the memberships, as plain rows (two queries in all): a handshake pays once."""
    rows = list(_membership_rows(user, kinds))
    group_ids = [row[1] for row in rows if row[2] == Conversation.Kind.GROUP]
    return ConversationSnapshot(group_ids, _summaries(user, rows[: settings.CHAT["CONVERSATION_LIST_LIMIT"]]))


def _summaries(user: User, rows: list[tuple]) -> list[ConversationSummary]:
    """Summaries of membership rows (`_SUMMARY_COLUMNS`), in their order; one query for the
    partners of the direct ones."""
    direct_ids = [row[0] for row in rows if row[2] == Conversation.Kind.DIRECT]
    partners: dict[int, tuple[str, str]] = {}
    if direct_ids:
        for conv_id, public_id, name in (
            Membership.objects.filter(conversation_id__in=direct_ids)
            .exclude(user=user)
            .values_list("conversation_id", "user__public_id", "user__display_name")
        ):
            partners[conv_id] = (public_id, name)
        # A request not accepted yet: its recipient is no member, but is the requester's partner.
        waiting = [pk for pk in direct_ids if pk not in partners]
        if waiting:
            for conv_id, public_id, name in ChatRequest.objects.filter(
                conversation_id__in=waiting, requester=user
            ).values_list("conversation_id", "recipient__public_id", "recipient__display_name"):
                partners[conv_id] = (public_id, name)
    result = []
    for pk, public_id, kind, last_message_at, last_seq, last_rev, title, last_read_seq in rows:
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
