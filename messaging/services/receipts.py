"""Read and delivery receipts: the target a report names, and the read and delivered pointers
(one per member, never a row per message and reader)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.models import User
from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode

from .. import events
from ..models import Conversation, Membership, Message
from ..selectors import (
    membership_get,
    message_seqs,
    unread_total,
    user_receipts_enabled,
)
from .audience import publish_to_conversation


def _read_target(
    conversation: Conversation, up_to_seq: object, message_ids: object, last_message_id: object
) -> int:
    """The seq a read (or delivery) report names, in any of its forms: a seq ("up to this
    message"), a list of message ids (their newest counts: the pointer covers everything
    before it), or the last message's id. None of them: the newest message."""
    given = [
        name
        for name, value in (
            ("seq", up_to_seq),
            ("message_ids", message_ids),
            ("last_message_id", last_message_id),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ApplicationError(
            ErrorCode.INVALID,
            "Name the messages one way: seq, message_ids or last_message_id.",
            {"field": given[1]},
        )
    if message_ids is not None or last_message_id is not None:
        field = "message_ids" if message_ids is not None else "last_message_id"
        ids = message_ids if message_ids is not None else [last_message_id]
        maximum = settings.CHAT["HISTORY_MAX_PAGE_SIZE"]  # no more than a page of history shows
        if (
            not isinstance(ids, list)
            or not ids
            or len(ids) > maximum
            or not all(isinstance(i, str) for i in ids)
        ):
            raise ApplicationError(
                ErrorCode.INVALID, f"{field} must name 1 to {maximum} messages by id.", {"field": field}
            )
        seqs = message_seqs(conversation=conversation, message_ids=ids)
        if len(seqs) != len(set(ids)):
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": field})
        return max(seqs.values())
    if up_to_seq is None:
        return conversation.last_seq
    if isinstance(up_to_seq, bool) or not isinstance(up_to_seq, int) or up_to_seq < 0:
        raise ApplicationError(ErrorCode.INVALID, "seq must be a non-negative integer.", {"field": "seq"})
    return min(up_to_seq, conversation.last_seq)


def conversation_mark_read(
    *,
    user: User,
    conversation_id: object,
    up_to_seq: object = None,
    kind: str | None = None,
    message_ids: object = None,
    last_message_id: object = None,
) -> tuple[Conversation, int]:
    """Move the caller's read pointer forward to `up_to_seq` (default: the newest message), or
    to the newest of `message_ids`, or to `last_message_id` (the forms other clients use).

    The pointer never moves backwards and never past the newest message: one pointer per
    member, never a row per message and reader. Returns (conversation, pointer). On commit:
    - `conversation.unread` (the reader's unread count here and in total) to the reader's own
      connections, so every device of theirs clears the count;
    - `conversation.read` to the members (also when nothing changed, as ExpressChat clients
      expect an acknowledgement), unless the reader turned read receipts off; each protocol
      decides who renders it (ExpressChat: the other members only).
    """
    membership = membership_get(user=user, conversation_id=conversation_id, kind=kind)
    conversation = membership.conversation
    target = _read_target(conversation, up_to_seq, message_ids, last_message_id)
    receipts = user_receipts_enabled(user)
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk, last_read_seq__lt=target).update(last_read_seq=target)
        # Read back: a concurrent send by the same user may have moved it further.
        pointer, last_seq = (
            Membership.objects.filter(pk=membership.pk)
            .values_list("last_read_seq", "conversation__last_seq")
            .get()
        )
        publish_on_commit(
            events.conversation_unread(
                conversation=conversation,
                reader=user,
                seq=pointer,
                unread=max(last_seq - pointer, 0),
                unread_total=unread_total(user=user),
            ),
            user_ids=[user.public_id],
        )
        if receipts:
            publish_to_conversation(
                conversation, events.conversation_read(conversation=conversation, reader=user, seq=pointer)
            )
    return conversation, pointer


def conversation_mark_delivered(
    *, user: User, conversation_id: object, up_to_seq: object = None, kind: str | None = None
) -> tuple[Conversation, int]:
    """Record that one of the caller's devices received the conversation's messages up to
    `up_to_seq` (default: the newest). Delivery reports are opt-in per client.

    The pointer never moves backwards or past the newest message. When it moves past messages
    the caller had neither received nor read before, `conversation.delivered` goes on commit to
    the senders of those messages only (one query finds them), unless the caller turned
    receipts off. Returns (conversation, pointer).
    """
    membership = membership_get(user=user, conversation_id=conversation_id, kind=kind)
    conversation = membership.conversation
    target = _read_target(conversation, up_to_seq, None, None)
    with transaction.atomic():
        delivered, read = (
            Membership.objects.select_for_update()
            .filter(pk=membership.pk)
            .values_list("last_delivered_seq", "last_read_seq")
            .get()
        )
        if delivered >= target:
            return conversation, delivered
        Membership.objects.filter(pk=membership.pk).update(last_delivered_seq=target)
        covered = max(delivered, read)  # read messages were acknowledged by the read receipt
        if covered < target and user_receipts_enabled(user):
            senders = list(
                Message.objects.filter(
                    conversation=conversation, seq__gt=covered, seq__lte=target, sender__isnull=False
                )
                .exclude(sender=user)
                .values_list("sender__public_id", flat=True)
                .distinct()
            )
            if senders:
                publish_on_commit(
                    events.conversation_delivered(conversation=conversation, recipient=user, seq=target),
                    user_ids=senders,
                )
    return conversation, target
