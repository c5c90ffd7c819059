"""Who may read what: membership and message access checks (every read of one conversation
goes through `membership_get` / `conversation_get_for_member`, so a non-member learns nothing),
the unique keys of self and direct conversations and their lookups, typing targets and the
co-members a presence change is pushed to."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, QuerySet

from accounts.models import User
from accounts.selectors import users_in_realm
from chatproject.core import rows
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from ..models import ChatRequest, Conversation, Membership, Message


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
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(membership_sql(db.vendor), [user.pk, conversation_id])
        row = cursor.fetchone()
    return membership_checked(
        None if row is None else membership_of_row(db, row), include_left=include_left, kind=kind
    )


def membership_checked(
    membership: Membership | None, *, include_left: bool = False, kind: str | None = None
) -> Membership:
    """`membership_get`'s rules, for a membership read with other statements (history pages
    read it in the same round trip as the page): None is not a member."""
    if membership is None:
        raise _not_found()
    if membership.left_at is not None and not include_left:
        raise _not_found()
    if kind is not None and membership.conversation.kind != kind:
        raise _not_found()
    return membership


# The membership with its conversation (`select_related("conversation")`) in hand-written SQL
# (chatproject.core.rows): every history page, mark-read and typing event starts here, and
# through the ORM building the query cost more CPU than running it (bench/README.md, session
# 5). `%s`: the user's pk, the conversation's public id; at most one row (`membership_unique`).
@cache
def membership_sql(vendor: str) -> str:
    m, c = Membership._meta, Conversation._meta
    db = connections[DEFAULT_DB_ALIAS]
    return (
        f"SELECT {rows.columns(db, 'm', rows.concrete_fields(Membership))}, "  # noqa: S608
        f"{rows.columns(db, 'c', rows.concrete_fields(Conversation))} "
        f"FROM {rows.table(db, Membership)} m JOIN {rows.table(db, Conversation)} c "
        f"ON {rows.q(db, 'c', c.pk.column)} = {rows.q(db, 'm', m.get_field('conversation').column)} "
        f"WHERE {rows.q(db, 'm', m.get_field('user').column)} = %s "
        f"AND {rows.q(db, 'c', c.get_field('public_id').column)} = %s"
    )


def membership_of_row(db: BaseDatabaseWrapper, row: Sequence[Any]) -> Membership:
    """The instances of a `membership_sql` row."""
    n = len(rows.concrete_fields(Membership))
    membership = rows.maker(db, Membership)(row[:n])
    Membership.conversation.field.set_cached_value(membership, rows.maker(db, Conversation)(row[n:]))
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


def direct_partner(*, conversation: Conversation, user: User) -> User | None:
    """The other user of a direct conversation: its other member, or, while a chat request waits
    for them, its recipient."""
    membership = (
        Membership.objects.filter(conversation=conversation).exclude(user=user).select_related("user").first()
    )
    if membership is not None:
        return membership.user
    request = ChatRequest.objects.filter(conversation=conversation).select_related("recipient").first()
    return request.recipient if request is not None and request.recipient_id != user.pk else None


@dataclass(frozen=True)
class TypingTarget:
    conversation_id: str
    kind: str
    peer_ids: tuple[str, ...]  # the other members of a direct chat; empty for a group (its bus group)


def conversation_typing_target(*, user: User, conversation_id: object) -> TypingTarget:
    """Where a member's typing indicator goes: a direct chat's other member, or a group's
    members. Notes to self have nobody to tell (invalid)."""
    membership = membership_get(user=user, conversation_id=conversation_id)
    conversation = membership.conversation
    if conversation.kind == Conversation.Kind.SELF:
        raise ApplicationError(ErrorCode.INVALID, "Nobody else is in this conversation.", {"field": "ChatId"})
    peers: tuple[str, ...] = ()
    if conversation.kind == Conversation.Kind.DIRECT:
        peers = tuple(
            Membership.objects.filter(conversation=conversation, left_at__isnull=True)
            .exclude(user=user)
            .values_list("user__public_id", flat=True)
        )
    return TypingTarget(conversation.public_id, conversation.kind, peers)


def _shared_conversations(user_pk) -> QuerySet[Membership]:
    """The current direct and group conversations of a user (`user_pk`: a pk or a subquery)."""
    return Membership.objects.filter(
        user_id__in=user_pk if isinstance(user_pk, QuerySet) else [user_pk],
        left_at__isnull=True,
        conversation__kind__in=(Conversation.Kind.DIRECT, Conversation.Kind.GROUP),
    ).values("conversation_id")


def co_member_ids(*, user_id: str) -> list[str]:
    """Public ids of the users a presence change of this user is pushed to, in one query: the
    members of their direct chats and of their groups of at most CHAT PRESENCE_PUSH_GROUP_MAX
    members. Pushing to every member of large groups costs members x members events when a
    group comes online together (measured: 604,284 events for 1,000 members connecting);
    members of larger groups ask with `fetch-presence` instead."""
    return co_member_ids_many(user_ids=[user_id]).get(user_id, [])


def co_member_ids_many(*, user_ids: list[str]) -> dict[str, list[str]]:
    """`co_member_ids` of several users in one query (the presence tracker publishes the
    changes of one debounce window together: a reconnect storm changes thousands of users).
    Users with nobody to tell are left out."""
    if not user_ids:
        return {}
    mine = Membership.objects.filter(
        user__public_id__in=user_ids,
        left_at__isnull=True,
        conversation__kind__in=(Conversation.Kind.DIRECT, Conversation.Kind.GROUP),
    ).values("conversation_id")
    pushed = (
        Membership.objects.filter(left_at__isnull=True, conversation_id__in=mine)
        .values("conversation_id")
        .annotate(members=Count("pk"))
        .filter(members__lte=settings.CHAT["PRESENCE_PUSH_GROUP_MAX"])
        .values("conversation_id")
    )
    # One row per (changed user, other member) of a pushed conversation: the filter on the
    # conversation's memberships applies to one joined membership, the changed user's own.
    rows = (
        Membership.objects.filter(left_at__isnull=True, conversation_id__in=pushed)
        .filter(
            conversation__memberships__user__public_id__in=user_ids,
            conversation__memberships__left_at__isnull=True,
        )
        .values_list("conversation__memberships__user__public_id", "user__public_id")
        .distinct()
    )
    audiences: dict[str, list[str]] = {}
    for changed, other in rows:
        if other != changed:
            audiences.setdefault(changed, []).append(other)
    return audiences


def co_members_among(*, user: User, user_ids: list[str]) -> set[str]:
    """Which of `user_ids` share a current direct or group conversation with `user`."""
    return set(
        Membership.objects.filter(
            left_at__isnull=True,
            user__public_id__in=user_ids,
            user__in=users_in_realm(of=user),  # conversations never span realms; said again here
            conversation_id__in=_shared_conversations(user.pk),
        )
        .exclude(user=user)
        .values_list("user__public_id", flat=True)
        .distinct()
    )


def _message_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "message_id"})


def message_get_for_member(
    *, user: User, message_id: object, conversation_id: object = None, for_update: bool = False
) -> tuple[Membership, Message]:
    """A message (with conversation and sender) of a conversation the user is a current member
    of, and that membership. `for_update` locks the message row (inside a transaction).

    Unknown and malformed ids, a message of another conversation than `conversation_id` (when
    given) and a message of a conversation the user is not in all raise the same not_found.
    """
    if not is_public_id(message_id):
        raise _message_not_found()
    messages = Message.objects.select_related("conversation", "sender", "attachment")
    if for_update:
        # FOR NO KEY UPDATE: the change then takes the conversation's row lock for its revision
        # (`_take_rev`), while a send holds that lock and may check a reply's foreign key to this
        # row (FOR KEY SHARE). A plain FOR UPDATE here would deadlock with such a send.
        messages = messages.select_for_update(of=("self",), no_key=True)
    message = messages.filter(public_id=message_id).first()
    if message is None:
        raise _message_not_found()
    if conversation_id is not None and message.conversation.public_id != conversation_id:
        raise _message_not_found()
    try:
        membership = membership_get(user=user, conversation_id=message.conversation.public_id)
    except ApplicationError:
        raise _message_not_found() from None
    return membership, message
