"""Moderation of messages: `message_moderate` (hide or delete as staff, recorded in the
moderation log of the accounts app)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts import moderation
from accounts.models import ModerationAction, User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from .. import events
from ..models import Message
from .audience import publish_to_conversation
from .changes import _erase_extras
from .storage import _take_rev

MODERATE_PERMISSION = "messaging.moderate_message"
MODERATE_HIDE = "hide"
MODERATE_DELETE = "delete"


def message_moderate(*, moderator: User, message_id: object, action: str, reason: object) -> Message:
    """Hide or delete a message as a moderator, record it, and tell the members live.

    Hide keeps the text (moderators still read it in the admin) but it is never served again;
    delete is a tombstone: the text is erased for good and `deleted_at` set. Either way the
    message keeps its id and seq, so clients see no gap. Only active staff holding
    `messaging.moderate_message` (or superusers) may do it, and a reason is required.
    Publishes `message.hidden` / `message.deleted` on commit to the conversation's audience
    (`audience.publish_to_conversation`), as every other message event.
    """
    moderation.moderator_check(moderator=moderator, permission=MODERATE_PERMISSION)
    reason = moderation.moderation_reason_clean(reason)
    if action not in (MODERATE_HIDE, MODERATE_DELETE):
        raise ApplicationError(ErrorCode.INVALID, 'action must be "hide" or "delete".', {"field": "action"})
    if not is_public_id(message_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "message_id"})
    with transaction.atomic():
        message = (
            # no_key: see `message_get_for_member` (a concurrent reply to it must not wait).
            Message.objects.select_for_update(of=("self",), no_key=True)
            .select_related("conversation", "sender")
            .filter(public_id=message_id)
            .first()
        )
        if message is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "message_id"})
        if message.deleted_at is not None:
            raise ApplicationError(ErrorCode.CONFLICT, "The message is already deleted.")
        now = timezone.now()
        if action == MODERATE_HIDE:
            if message.hidden_at is not None:
                raise ApplicationError(ErrorCode.CONFLICT, "The message is already hidden.")
            message.hidden_at, message.rev = now, _take_rev(message.conversation)
            message.save(update_fields=["hidden_at", "rev"])
            event = events.message_hidden(conversation=message.conversation, message=message)
        else:
            message.content, message.deleted_at = "", now
            message.rev = _take_rev(message.conversation)
            message.save(update_fields=["content", "deleted_at", "rev"])
            _erase_extras(message)  # earlier texts and reactions go with the text
            event = events.message_deleted(conversation=message.conversation, message=message)
        conversation = message.conversation
        moderation.moderation_action_record(
            moderator=moderator,
            action=ModerationAction.Action.MESSAGE_HIDE
            if action == MODERATE_HIDE
            else ModerationAction.Action.MESSAGE_DELETE,
            target_type=ModerationAction.TargetType.MESSAGE,
            target_id=message.public_id,
            reason=reason,
            extra={
                "conversation_id": conversation.public_id,
                "conversation_kind": conversation.kind,
                "seq": message.seq,
                "sender_id": message.sender.public_id if message.sender else None,
            },
        )
        publish_to_conversation(conversation, event)
    return message
