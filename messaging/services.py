"""Writes of the messaging domain. Every transport ends here; events leave only on commit."""

import logging
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id
from chatproject.core.text import is_storable
from chatproject.realtime.publish import publish_on_commit

from . import events
from .models import Conversation, Membership, Message
from .selectors import (
    direct_conversation_find,
    direct_key,
    membership_get,
    self_conversation_get,
    self_key,
)

logger = logging.getLogger(__name__)

CLIENT_MESSAGE_ID_MAX = 64


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
    """The user someone wants to chat with: must exist, be verified, active and not banned."""
    if not is_public_id(other_user_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})
    other = User.objects.filter(public_id=other_user_id).first()
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


def _validate_content(content: object) -> str:
    if not isinstance(content, str):
        raise ApplicationError(ErrorCode.INVALID, "Content must be a string.", {"field": "content"})
    if not is_storable(content):
        raise ApplicationError(
            ErrorCode.INVALID, "Content contains characters that cannot be stored.", {"field": "content"}
        )
    if not content.strip():
        raise ApplicationError(ErrorCode.INVALID, "Content must not be empty.", {"field": "content"})
    maximum = settings.CHAT["MAX_MESSAGE_LENGTH"]
    if len(content) > maximum:
        raise ApplicationError(
            ErrorCode.INVALID,
            f"Content is longer than {maximum} characters.",
            {"field": "content", "max_length": maximum},
        )
    return content


def _validate_client_message_id(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > CLIENT_MESSAGE_ID_MAX
        or not is_storable(value)
    ):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"client_message_id must be a string of 1 to {CLIENT_MESSAGE_ID_MAX} characters.",
            {"field": "client_message_id"},
        )
    return value


@lru_cache(maxsize=65536)
def _direct_member_ids(conversation_id: str) -> tuple[str, ...]:
    # Members of a self or direct conversation never change (nobody leaves them), so this cache
    # never goes stale. A feature that lets people leave a direct chat must drop this cache.
    return tuple(
        Membership.objects.filter(conversation__public_id=conversation_id, left_at__isnull=True).values_list(
            "user__public_id", flat=True
        )
    )


def _next_seq(conversation: Conversation, now) -> int:
    """Take the next sequence number: one UPDATE ... RETURNING that also locks the row until
    commit, so concurrent senders queue here and numbers stay gapless. `last_message_at` only
    moves forward (a sender whose clock reading is older than the lock holder's keeps it)."""
    table = connection.ops.quote_name(Conversation._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1, "  # noqa: S608
            "last_message_at = CASE WHEN last_message_at > %s THEN last_message_at ELSE %s END "
            "WHERE id = %s RETURNING last_seq",
            [stamp, stamp, conversation.pk],
        )
        (seq,) = cursor.fetchone()
    return seq


def message_send(
    *,
    user: User,
    conversation_id: object,
    content: object,
    client_message_id: object = None,
    kind: str | None = None,
) -> tuple[Message, bool]:
    """Post a text message into a conversation the user belongs to.

    Idempotent on `client_message_id`: a retry with the same id returns the original message and
    `created=False`, never a duplicate. Returns (message, created). Publishes `message.created`
    after commit to the members (direct and self chats) or to the conversation's bus group.
    """
    content = _validate_content(content)
    client_message_id = _validate_client_message_id(client_message_id)
    membership = membership_get(user=user, conversation_id=conversation_id, kind=kind)
    conversation = membership.conversation
    if client_message_id is not None:
        original = _message_by_client_id(conversation, user, client_message_id)
        if original is not None:
            return original, False
    try:
        with transaction.atomic():
            message = _message_insert(membership, user, content, client_message_id)
    except IntegrityError:
        original = _message_by_client_id(conversation, user, client_message_id) if client_message_id else None
        if original is None:
            raise
        return original, False
    return message, True


def _message_by_client_id(conversation: Conversation, user: User, client_message_id: str) -> Message | None:
    return (
        Message.objects.filter(conversation=conversation, sender=user, client_message_id=client_message_id)
        .select_related("conversation")
        .first()
    )


def _message_insert(
    membership: Membership, user: User, content: str, client_message_id: str | None
) -> Message:
    message = _message_store(membership.conversation, user, Message.Kind.TEXT, content, client_message_id)
    # Writing a message means having read the conversation up to it.
    Membership.objects.filter(pk=membership.pk, last_read_seq__lt=message.seq).update(
        last_read_seq=message.seq
    )
    return message


def _message_store(
    conversation: Conversation, sender: User | None, kind: str, content: str, client_message_id: str | None
) -> Message:
    """Take the next seq, store the message, publish it on commit. Inside a transaction."""
    now = timezone.now()
    seq = _next_seq(conversation, now)
    conversation.last_seq, conversation.last_message_at = seq, now
    message = Message.objects.create(
        conversation=conversation,
        seq=seq,
        sender=sender,
        kind=kind,
        content=content,
        client_message_id=client_message_id,
        created_at=now,
    )
    event = events.message_created(conversation=conversation, message=message, sender=sender)
    if conversation.kind == Conversation.Kind.GROUP:
        publish_on_commit(event, conversation_ids=[conversation.public_id])
    else:
        publish_on_commit(event, user_ids=_direct_member_ids(conversation.public_id))
    return message


def system_message_post(*, conversation: Conversation, actor: User | None, text: str) -> Message:
    """Record a fact (a membership change, a rename) in a conversation's history, so members
    who were offline see what happened. Call inside the transaction that made the change."""
    message = _message_store(conversation, actor, Message.Kind.SYSTEM, text, None)
    if actor is not None:  # the one who caused it has seen it: it is not unread for them
        Membership.objects.filter(
            conversation=conversation, user=actor, left_at__isnull=True, last_read_seq__lt=message.seq
        ).update(last_read_seq=message.seq)
    return message


def self_message_send(
    *, user: User, content: object, client_message_id: object = None
) -> tuple[Message, bool]:
    """Post into the user's notes-to-self conversation (created if missing)."""
    conversation = self_conversation_ensure(user=user)
    return message_send(
        user=user,
        conversation_id=conversation.public_id,
        content=content,
        client_message_id=client_message_id,
        kind=Conversation.Kind.SELF,
    )


def conversation_mark_read(
    *, user: User, conversation_id: object, up_to_seq: object = None, kind: str | None = None
) -> tuple[Conversation, int]:
    """Move the caller's read pointer forward to `up_to_seq` (default: the newest message).

    The pointer never moves backwards and never past the newest message. Returns
    (conversation, pointer). Publishes `conversation.read` to the members on commit (also when
    nothing changed, as ExpressChat clients expect an acknowledgement); each protocol decides
    who renders it (ExpressChat: the other members only).
    """
    membership = membership_get(user=user, conversation_id=conversation_id, kind=kind)
    conversation = membership.conversation
    if up_to_seq is None:
        target = conversation.last_seq
    elif isinstance(up_to_seq, bool) or not isinstance(up_to_seq, int) or up_to_seq < 0:
        raise ApplicationError(ErrorCode.INVALID, "seq must be a non-negative integer.", {"field": "seq"})
    else:
        target = min(up_to_seq, conversation.last_seq)
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk, last_read_seq__lt=target).update(last_read_seq=target)
        # Read back: a concurrent send by the same user may have moved it further.
        pointer = Membership.objects.filter(pk=membership.pk).values_list("last_read_seq", flat=True).get()
        event = events.conversation_read(conversation=conversation, reader=user, seq=pointer)
        if conversation.kind == Conversation.Kind.GROUP:
            publish_on_commit(event, conversation_ids=[conversation.public_id])
        else:
            publish_on_commit(event, user_ids=_direct_member_ids(conversation.public_id))
    return conversation, pointer
