"""Reads of the messaging domain. Every read of one conversation goes through
`conversation_get_for_member`, so a non-member learns nothing, not even that it exists."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import F, QuerySet

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from .models import Conversation, Membership, Message


def _not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such conversation.")


def membership_get(
    *, user: User, conversation_id: object, include_left: bool = False, kind: str | None = None
) -> Membership:
    """The caller's membership of a conversation, with the conversation joined.

    Unknown ids, malformed ids, conversations of another `kind` than asked for, and
    conversations the user is not in all raise the same not_found error.
    """
    if not is_public_id(conversation_id):
        raise _not_found()
    membership = (
        Membership.objects.select_related("conversation")
        .filter(user=user, conversation__public_id=conversation_id)
        .first()
    )
    if membership is None:
        raise _not_found()
    if membership.left_at is not None and not include_left:
        raise _not_found()
    if kind is not None and membership.conversation.kind != kind:
        raise _not_found()
    return membership


def conversation_get_for_member(
    *, user: User, conversation_id: object, include_left: bool = False, kind: str | None = None
) -> Conversation:
    return membership_get(
        user=user, conversation_id=conversation_id, include_left=include_left, kind=kind
    ).conversation


def self_conversation_get(*, user: User) -> Conversation | None:
    return Conversation.objects.filter(unique_key=self_key(user)).first()


def self_key(user: User) -> str:
    return f"self:{user.pk}"


def direct_key(a: User, b: User) -> str:
    low, high = sorted((a.pk, b.pk))
    return f"direct:{low}:{high}"


def direct_conversation_find(*, user: User, other: User) -> Conversation | None:
    return Conversation.objects.filter(unique_key=direct_key(user, other)).first()


def conversation_member_ids(*, conversation: Conversation) -> list[str]:
    """Public ids of the current members, in order of joining."""
    return list(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True)
        .order_by("joined_at", "pk")
        .values_list("user__public_id", flat=True)
    )


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


def conversation_list_for_user(
    *, user: User, kinds: tuple[str, ...] | None = None
) -> list[ConversationSummary]:
    """The user's current conversations, most recent activity first, with unread counts.

    Two queries whatever the number of conversations: memberships with conversations, then the
    partners of the direct ones. Bounded by CHAT CONVERSATION_LIST_LIMIT.
    """
    limit = settings.CHAT["CONVERSATION_LIST_LIMIT"]
    memberships = Membership.objects.filter(user=user, left_at__isnull=True).select_related("conversation")
    if kinds:
        memberships = memberships.filter(conversation__kind__in=kinds)
    rows = list(memberships.order_by("-conversation__last_message_at", "-conversation_id")[:limit])
    direct_ids = [m.conversation_id for m in rows if m.conversation.kind == Conversation.Kind.DIRECT]
    partners: dict[int, tuple[str, str]] = {}
    if direct_ids:
        for conv_id, public_id, name in (
            Membership.objects.filter(conversation_id__in=direct_ids)
            .exclude(user=user)
            .values_list("conversation_id", "user__public_id", "user__display_name")
        ):
            partners[conv_id] = (public_id, name)
    result = []
    for m in rows:
        conv = m.conversation
        partner = partners.get(conv.pk)
        result.append(
            ConversationSummary(
                id=conv.public_id,
                kind=conv.kind,
                last_message_at=conv.last_message_at,
                last_seq=conv.last_seq,
                last_read_seq=m.last_read_seq,
                unread=max(conv.last_seq - m.last_read_seq, 0),
                partner_id=partner[0] if partner else None,
                partner_name=partner[1] if partner else None,
                title=conv.title or None,
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
    )


def unread_total(*, user: User) -> int:
    values = Membership.objects.filter(user=user, left_at__isnull=True).values_list(
        F("conversation__last_seq") - F("last_read_seq"), flat=True
    )
    return sum(max(v, 0) for v in values)


def message_history(
    *,
    user: User,
    conversation_id: object,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = None,
    kind: str | None = None,
) -> tuple[Conversation, list[Message]]:
    """One page of a conversation, keyset-paginated on the sequence number.

    Without `after`: the newest messages older than `before` (or the newest), newest first.
    With `after`: the oldest messages newer than `after`, oldest first (catching up).
    A member who left reads only up to the moment they left.
    """
    membership = membership_get(user=user, conversation_id=conversation_id, include_left=True, kind=kind)
    page = _page_size(limit)
    qs: QuerySet[Message] = Message.objects.filter(conversation_id=membership.conversation_id)
    if membership.left_seq is not None:
        qs = qs.filter(seq__lte=membership.left_seq)
    if before is not None:
        qs = qs.filter(seq__lt=_seq(before, "before"))
    if after is not None:
        qs = qs.filter(seq__gt=_seq(after, "after")).order_by("seq")
    else:
        qs = qs.order_by("-seq")
    messages = list(qs.select_related("sender")[:page])
    return membership.conversation, messages


@dataclass(frozen=True)
class MessagePage:
    conversation: Conversation
    messages: list[Message]
    # Where the next page starts: pass as `before` (older) or `after` (newer); None at the end.
    next_before: int | None
    next_after: int | None


def message_page(
    *,
    user: User,
    conversation_id: object,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> MessagePage:
    """`message_history` with the cursor of the following page.

    A short page is the last one. Sequence numbers start at 1 with no gaps, so a page reaching
    seq 1 is the oldest even when it is full.
    """
    conversation, messages = message_history(
        user=user, conversation_id=conversation_id, before=before, after=after, limit=limit
    )
    full = len(messages) == _page_size(limit)
    next_before = next_after = None
    if messages and full and after is None and messages[-1].seq > 1:
        next_before = messages[-1].seq
    if messages and full and after is not None:
        next_after = messages[-1].seq
    return MessagePage(conversation, messages, next_before, next_after)


def _page_size(limit: int | None) -> int:
    maximum = settings.CHAT["HISTORY_MAX_PAGE_SIZE"]
    if limit is None:
        return settings.CHAT["HISTORY_PAGE_SIZE"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ApplicationError(ErrorCode.INVALID, "limit must be a positive integer.", {"field": "limit"})
    return min(limit, maximum)


def _seq(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApplicationError(
            ErrorCode.INVALID, f"{field} must be a non-negative integer.", {"field": field}
        )
    return value


def read_pointers(*, conversation: Conversation) -> dict[str, int]:
    """user public id -> last read seq, for every current member."""
    return dict(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
            "user__public_id", "last_read_seq"
        )
    )


def direct_partner(*, conversation: Conversation, user: User) -> User | None:
    membership = (
        Membership.objects.filter(conversation=conversation).exclude(user=user).select_related("user").first()
    )
    return membership.user if membership else None


@dataclass(frozen=True)
class ConversationPage:
    conversation: Conversation
    messages: list[Message]
    read_pointers: dict[str, int]
    partner: User | None


def conversation_page(
    *,
    user: User,
    conversation_id: object,
    kind: str,
    before: int | None = None,
    limit: int | None = None,
) -> ConversationPage:
    """A page of history with what a client needs to show it: read pointers and, for direct
    chats, the partner."""
    conversation, messages = message_history(
        user=user, conversation_id=conversation_id, before=before, limit=limit, kind=kind
    )
    pointers = read_pointers(conversation=conversation) if kind != Conversation.Kind.SELF else {}
    partner = (
        direct_partner(conversation=conversation, user=user) if kind == Conversation.Kind.DIRECT else None
    )
    return ConversationPage(conversation, messages, pointers, partner)


def conversation_ids_for_user(*, user: User, kinds: tuple[str, ...]) -> list[str]:
    """Public ids of the user's current conversations of these kinds (bus subscriptions)."""
    return list(
        Membership.objects.filter(user=user, left_at__isnull=True, conversation__kind__in=kinds).values_list(
            "conversation__public_id", flat=True
        )
    )
