"""Conversations that are not groups: the notes-to-self conversation, the one direct
conversation per pair of users, and the check of the partner someone wants to chat with."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import users_in_realm
from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from .. import events
from ..models import Conversation, Membership
from ..selectors import (
    direct_conversation_find,
    direct_key,
    membership_get,
    self_conversation_get,
    self_key,
)


def self_conversation_ensure(*, user: User) -> Conversation:
    """Create the user's notes-to-self conversation if it does not exist (idempotent).

    Called at email verification; safe to call again at any time.
    """
    existing = self_conversation_get(user=user)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.SELF, unique_key=self_key(user), created_by=user
            )
            Membership.objects.create(conversation=conversation, user=user, role=Membership.Role.OWNER)
    except IntegrityError:
        # A concurrent call created it first.
        conversation = Conversation.objects.get(unique_key=self_key(user))
    return conversation


def chat_partner_get(*, user: User, other_user_id: object) -> User:
    """The user someone wants to chat with: must exist in the same realm, be verified, active
    and not banned. A user of another realm is not found, like an id nobody has."""
    if not is_public_id(other_user_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})
    other = users_in_realm(of=user).filter(public_id=other_user_id).first()
    if other is None or not other.can_chat:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})
    if other.pk == user.pk:
        raise ApplicationError(ErrorCode.INVALID, "Use the notes-to-self chat to write to yourself.")
    return other


def direct_conversation_get_or_create(
    *, user: User, other_user_id: object
) -> tuple[Conversation, User, bool]:
    """The one direct conversation between `user` and another user, created on first use.

    Returns (conversation, partner, created). At most one conversation exists per pair: the
    pair's key is unique in the database, so concurrent creations converge on one row.
    """
    other = chat_partner_get(user=user, other_user_id=other_user_id)
    existing = direct_conversation_find(user=user, other=other)
    if existing is not None:
        return existing, other, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.DIRECT, unique_key=direct_key(user, other), created_by=user
            )
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user=user, role=Membership.Role.MEMBER),
                    Membership(conversation=conversation, user=other, role=Membership.Role.MEMBER),
                ]
            )
            publish_on_commit(
                events.conversation_created(conversation=conversation, creator=user, members=[user, other]),
                user_ids=[user.public_id, other.public_id],
            )
    except IntegrityError:
        return Conversation.objects.get(unique_key=direct_key(user, other)), other, False
    return conversation, other, True


def conversation_block(*, user: User, conversation_id: object, blocked: bool) -> Conversation:
    """Block (or unblock) a direct conversation the user is a member of. While blocked,
    `message_send_many` refuses new messages from both members, whatever protocol sends them.

    Idempotent. Who may lift a block is the caller's rule (CZ Messenger: only the side that
    blocked); the core holds only the fact. Messages already sent stay readable.
    """
    membership = membership_get(user=user, conversation_id=conversation_id, kind=Conversation.Kind.DIRECT)
    conversation = membership.conversation
    if blocked == (conversation.blocked_at is not None):
        return conversation
    conversation.blocked_at = timezone.now() if blocked else None
    conversation.save(update_fields=["blocked_at"])
    return conversation
