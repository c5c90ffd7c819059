"""Changes to stored messages: edits (with their history), deletes (tombstones) and
reactions. Each moves the conversation's revision so a resync serves the change."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable

from .. import events
from ..models import Conversation, Membership, Message, MessageEdit, Reaction
from ..selectors import (
    message_get_for_member,
    reaction_count,
)
from ..uploads import attachment_erase
from .audience import publish_to_conversation
from .storage import _take_rev
from .validation import _validate_body

logger = logging.getLogger(__name__)


REACTION_EMOJI_MAX = 32  # the column's length


def _refuse_system(message: Message, verb: str) -> None:
    if message.kind == Message.Kind.SYSTEM:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, f"System messages cannot be {verb}.")


def _refuse_removed(message: Message) -> None:
    if message.deleted_at is not None:
        raise ApplicationError(ErrorCode.CONFLICT, "The message was deleted.")
    if message.hidden_at is not None:
        raise ApplicationError(ErrorCode.CONFLICT, "A moderator hid the message.")


def _erase_extras(message: Message) -> None:
    """A deleted message keeps nothing: not its earlier texts, not its reactions, not its file
    (erased from storage once the delete committed)."""
    MessageEdit.objects.filter(message=message).delete()
    Reaction.objects.filter(message=message).delete()
    if message.attachment is not None:
        attachment_erase(attachment=message.attachment)


def message_edit(
    *,
    user: User,
    message_id: object,
    content: object,
    conversation_id: object = None,
    origin: str | None = None,
) -> Message:
    """Change the text (or a media message's caption) of one's own message; the text it
    replaces goes to its edit history.

    Only the sender, not system messages, not once deleted or hidden by a
    moderator. Content follows the rules of a send. Sending the same text again changes nothing
    (no history row, no event): a retried edit is harmless. `conversation_id`, when given, must
    be the message's conversation. Publishes `message.edited` on commit to the members.
    """
    with transaction.atomic():
        _membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        _refuse_system(message, "edited")
        if message.sender_id != user.pk:
            raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only the sender can edit a message.")
        _refuse_removed(message)
        if content is None:  # an empty caption is "", never a missing field
            raise ApplicationError(ErrorCode.INVALID, "Content must be a string.", {"field": "content"})
        content = _validate_body(message.kind, content)  # a caption may become empty, text not
        if content == message.content:
            return message
        now = timezone.now()
        MessageEdit.objects.create(message=message, content=message.content, edited_at=now, editor=user)
        message.content, message.edited_at = content, now
        message.rev = _take_rev(message.conversation)
        message.save(update_fields=["content", "edited_at", "rev"])
        publish_to_conversation(
            message.conversation,
            events.message_edited(
                conversation=message.conversation, message=message, editor=user, origin=origin
            ),
        )
    logger.info("message edited: message=%s user=%s", message.public_id, user.public_id)
    return message


def _may_delete_others(membership: Membership) -> bool:
    """Group owners and admins delete other members' messages; in direct and self chats nobody
    deletes what someone else wrote. (Moderators use `message_moderate`.)"""
    if membership.conversation.kind != Conversation.Kind.GROUP:
        return False
    return membership.role in (Membership.Role.OWNER, Membership.Role.ADMIN)


def message_delete(*, user: User, message_id: object, conversation_id: object = None) -> Message:
    """Delete a message, leaving a tombstone: the text, its edit history and its reactions are
    erased; id and seq stay, so no client sees a gap.

    The sender may, and in groups the owner and admins may delete anyone's message. System
    messages are facts and stay. A message a moderator hid stays as the moderator left it (its
    text is their evidence). Deleting twice is a conflict. Publishes `message.deleted` on commit
    to the members, the event moderation publishes, so clients handle one shape.
    """
    with transaction.atomic():
        membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        _refuse_system(message, "deleted")
        if message.sender_id != user.pk and not _may_delete_others(membership):
            raise ApplicationError(
                ErrorCode.PERMISSION_DENIED, "Only the sender or a group admin can delete this message."
            )
        _refuse_removed(message)
        message.content, message.deleted_at = "", timezone.now()
        message.rev = _take_rev(message.conversation)
        message.save(update_fields=["content", "deleted_at", "rev"])
        _erase_extras(message)
        publish_to_conversation(
            message.conversation, events.message_deleted(conversation=message.conversation, message=message)
        )
    logger.info("message deleted: message=%s user=%s", message.public_id, user.public_id)
    return message


def _stamp_rev(message: Message) -> None:
    """A change that is not a column of the message (a reaction) still moves its revision, so
    a resync serves the message again with its current reactions."""
    message.rev = _take_rev(message.conversation)
    Message.objects.filter(pk=message.pk).update(rev=message.rev)


def _validate_emoji(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > REACTION_EMOJI_MAX
        or not is_storable(value)
        or any(c.isspace() for c in value)
    ):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"emoji must be 1 to {REACTION_EMOJI_MAX} characters without spaces.",
            {"field": "emoji"},
        )
    return value


def reaction_add(
    *, user: User, message_id: object, emoji: object, conversation_id: object = None
) -> tuple[Message, int, bool]:
    """Put an emoji on a message of a conversation the user is in. Idempotent: adding one the
    user already put there changes nothing and publishes nothing.

    At most CHAT MAX_REACTIONS_PER_USER distinct emoji per user per message; none on deleted or
    hidden messages. Returns (message, how many members have this emoji on it, added). Publishes
    `reaction.added` on commit to the members.
    """
    emoji = _validate_emoji(emoji)
    with transaction.atomic():
        # The row lock orders the reactions of one message: counts and the limit stay exact.
        _membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        _refuse_removed(message)
        mine = set(Reaction.objects.filter(message=message, user=user).values_list("emoji", flat=True))
        if emoji in mine:
            return message, reaction_count(message=message, emoji=emoji), False
        maximum = settings.CHAT["MAX_REACTIONS_PER_USER"]
        if len(mine) >= maximum:
            raise ApplicationError(
                ErrorCode.INVALID,
                f"At most {maximum} different reactions per message.",
                {"field": "emoji", "max_reactions": maximum},
            )
        Reaction.objects.create(message=message, user=user, emoji=emoji)
        _stamp_rev(message)
        count = reaction_count(message=message, emoji=emoji)
        publish_to_conversation(
            message.conversation,
            events.reaction_changed(
                conversation=message.conversation,
                message=message,
                user=user,
                emoji=emoji,
                count=count,
                added=True,
            ),
        )
    return message, count, True


def reaction_remove(
    *, user: User, message_id: object, emoji: object, conversation_id: object = None
) -> tuple[Message, int, bool]:
    """Take one's emoji off a message. Idempotent: removing one that is not there changes
    nothing and publishes nothing. Returns (message, how many members still have this emoji on
    it, removed). Publishes `reaction.removed` on commit to the members."""
    emoji = _validate_emoji(emoji)
    with transaction.atomic():
        _membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        removed, _per_model = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
        count = reaction_count(message=message, emoji=emoji)
        if removed:
            _stamp_rev(message)
            publish_to_conversation(
                message.conversation,
                events.reaction_changed(
                    conversation=message.conversation,
                    message=message,
                    user=user,
                    emoji=emoji,
                    count=count,
                    added=False,
                ),
            )
    return message, count, bool(removed)
