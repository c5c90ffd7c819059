"""Conversations that are not groups: the notes-to-self conversation, the one direct
conversation per pair of users, the check of the partner someone wants to chat with, and chat
requests (a direct conversation that starts as a request, models.ChatRequest)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import users_in_realm
from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id, new_public_id

from .. import events
from ..models import ChatRequest, Conversation, Membership
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
        # Opening the chat with someone whose request is waiting for you accepts it.
        request = ChatRequest.objects.filter(conversation=existing, recipient=user).first()
        if request is not None and request.state != ChatRequest.State.ACCEPTED:
            _accept(request, actor=user)
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


# --- chat requests ---------------------------------------------------------------------------


def _request_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such chat request.", {"field": "request_id"})


def chat_request_create(
    *, user: User, other_user_id: object, distinct: bool = True
) -> tuple[ChatRequest, bool]:
    """Ask another user of the caller's realm for a chat. Returns (request, created).

    The conversation is a direct one whose only member is the requester until the recipient
    accepts (models.ChatRequest). `distinct` (the default): the pair's one direct conversation,
    so a pair that already chats is a conflict (`extra.conversation_id` names the chat), asking
    again while pending returns the same request, and asking someone whose request is waiting
    for you accepts theirs. `distinct=False`: a new conversation of its own every time (a
    protocol whose rooms are many per pair, each with its own history).
    """
    other = chat_partner_get(user=user, other_user_id=other_user_id)
    key = direct_key(user, other)
    if distinct:
        existing = direct_conversation_find(user=user, other=other)
        if existing is not None:
            return _request_again(user, existing), False
    else:
        key = f"{key}:{new_public_id()}"
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.DIRECT, unique_key=key, created_by=user
            )
            Membership.objects.create(conversation=conversation, user=user, role=Membership.Role.MEMBER)
            request = ChatRequest.objects.create(conversation=conversation, requester=user, recipient=other)
            publish_on_commit(
                events.chat_request_changed(request=request, actor=user),
                user_ids=[user.public_id, other.public_id],
            )
    except IntegrityError:
        # The pair's conversation was made concurrently (distinct keys only can collide).
        return _request_again(user, Conversation.objects.get(unique_key=key)), False
    return request, True


def _request_again(user: User, conversation: Conversation) -> ChatRequest:
    request = (
        ChatRequest.objects.select_related("conversation", "requester", "recipient")
        .filter(conversation=conversation)
        .first()
    )
    if request is None or request.state == ChatRequest.State.ACCEPTED:
        raise ApplicationError(
            ErrorCode.CONFLICT,
            "You already have a chat with this user.",
            {"conversation_id": conversation.public_id},
        )
    if request.requester_id != user.pk:
        return _accept(request, actor=user)  # they asked you first: asking back accepts
    if request.state == ChatRequest.State.DECLINED:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "This chat request was declined.")
    return request


def _request_for_recipient(user: User, request_id: object) -> ChatRequest:
    """A request made to the caller. The requester, anyone else and malformed ids: not found
    (the requester cannot accept on the recipient's behalf)."""
    if not is_public_id(request_id):
        raise _request_not_found()
    request = (
        ChatRequest.objects.select_related("conversation", "requester", "recipient")
        .filter(public_id=request_id, recipient=user)
        .first()
    )
    if request is None:
        raise _request_not_found()
    return request


def chat_request_accept(*, user: User, request_id: object) -> ChatRequest:
    """Accept a chat request made to the caller (also one they declined before): they become a
    member, so the conversation, its unread messages and its live events reach them from now
    on. Idempotent."""
    return _accept(_request_for_recipient(user, request_id), actor=user)


def chat_request_decline(*, user: User, request_id: object) -> ChatRequest:
    """Decline a pending chat request made to the caller: the requester's membership ends (they
    keep the history up to here and can send no more). An accepted request cannot be declined
    (conflict); declining twice changes nothing."""
    request = _request_for_recipient(user, request_id)
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=request.conversation_id)
        request = (
            ChatRequest.objects.select_for_update()
            .select_related("requester", "recipient")
            .get(pk=request.pk)
        )
        request.conversation = conversation
        if request.state == ChatRequest.State.DECLINED:
            return request
        if request.state == ChatRequest.State.ACCEPTED:
            raise ApplicationError(ErrorCode.CONFLICT, "This chat request was accepted already.")
        now = timezone.now()
        Membership.objects.filter(
            conversation=conversation, user=request.requester, left_at__isnull=True
        ).update(left_at=now, left_seq=conversation.last_seq)
        request.state, request.decided_at = ChatRequest.State.DECLINED, now
        request.save(update_fields=["state", "decided_at"])
        publish_on_commit(
            events.chat_request_changed(request=request, actor=user),
            user_ids=[request.requester.public_id, request.recipient.public_id],
        )
    return request


def _accept(request: ChatRequest, *, actor: User) -> ChatRequest:
    with transaction.atomic():
        # The conversation row first, as a send does: no message slips between the two
        # memberships, and a concurrent decline waits.
        conversation = Conversation.objects.select_for_update().get(pk=request.conversation_id)
        request = (
            ChatRequest.objects.select_for_update()
            .select_related("requester", "recipient")
            .get(pk=request.pk)
        )
        request.conversation = conversation
        if request.state == ChatRequest.State.ACCEPTED:
            return request
        Membership.objects.update_or_create(
            conversation=conversation,
            user=request.recipient,
            defaults={"left_at": None, "left_seq": None},
            create_defaults={"role": Membership.Role.MEMBER},
        )
        if request.state == ChatRequest.State.DECLINED:
            # The decline had ended the requester's membership (at its `decided_at`): it comes
            # back. A requester who left by themselves (`conversation_leave`) stays out.
            Membership.objects.filter(
                conversation=conversation, user=request.requester, left_at=request.decided_at
            ).update(left_at=None, left_seq=None)
        request.state, request.decided_at = ChatRequest.State.ACCEPTED, timezone.now()
        request.save(update_fields=["state", "decided_at"])
        publish_on_commit(
            events.chat_request_changed(request=request, actor=actor),
            user_ids=[request.requester.public_id, request.recipient.public_id],
        )
    return request


# --- leaving a request's own conversation ------------------------------------------------------


def _own_request(conversation: Conversation) -> ChatRequest:
    """The request a conversation of its own started as (`chat_request_create(distinct=False)`).

    The pair's one direct conversation (distinct, whether it started as a request or not) cannot
    be left: it is the pair's only chat and would come back with the next `create-personal-chat`
    anyway; blocking it is the way to stop a partner (`conversation_block`)."""
    request = (
        ChatRequest.objects.select_related("requester", "recipient").filter(conversation=conversation).first()
    )
    if request is None or conversation.unique_key == direct_key(request.requester, request.recipient):
        raise ApplicationError(
            ErrorCode.CONFLICT,
            "Only a chat that started as a request of its own can be left; block this chat instead.",
            {"reason": "not_leavable"},
        )
    return request


def _locked_membership(user: User, conversation_id: object) -> tuple[Membership, ChatRequest]:
    """The caller's membership (current or former) of a leavable conversation, the conversation
    row locked first, as a send does: no message slips past the change."""
    membership = membership_get(
        user=user, conversation_id=conversation_id, include_left=True, kind=Conversation.Kind.DIRECT
    )
    conversation = Conversation.objects.select_for_update().get(pk=membership.conversation_id)
    request = _own_request(conversation)  # read under the lock a decision takes too
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    membership.conversation, request.conversation = conversation, conversation
    return membership, request


def conversation_leave(*, user: User, conversation_id: object) -> Membership:
    """Leave a two-party conversation that started as a chat request of its own (seed 002's
    rooms): the caller's membership ends (`left_at`, `left_seq`), so nothing more of it reaches
    them (lists, unread counts, live events, typing) and they can send no more; they keep the
    history up to here. The other party stays and is told (`conversation.member_left`). The
    seat stays the caller's: only they can come back (`conversation_rejoin`).

    Idempotent (leaving again changes nothing and tells nobody). The pair's one direct chat is
    a conflict (`_own_request`); a conversation one was never in is not found."""
    with transaction.atomic():
        membership, request = _locked_membership(user, conversation_id)
        if membership.left_at is not None:
            return membership
        conversation = membership.conversation
        membership.left_at, membership.left_seq = timezone.now(), conversation.last_seq
        membership.save(update_fields=["left_at", "left_seq"])
        publish_on_commit(
            events.conversation_member_changed(conversation=conversation, user=user, left=True),
            user_ids=[request.requester.public_id, request.recipient.public_id],
        )
    return membership


def conversation_rejoin(*, user: User, conversation_id: object) -> Membership:
    """Come back to a conversation the caller left with `conversation_leave`: their membership
    is restored with their read pointer, so what was written meanwhile counts as unread and the
    whole history is readable again. Only a former member can (anyone else: not found); a
    requester whose request was declined cannot (permission denied: the recipient decides).
    Idempotent for a current member. Both users are told (`conversation.member_rejoined`)."""
    with transaction.atomic():
        membership, request = _locked_membership(user, conversation_id)
        if membership.left_at is None:
            return membership
        if request.state == ChatRequest.State.DECLINED:
            raise ApplicationError(ErrorCode.PERMISSION_DENIED, "This chat request was declined.")
        membership.left_at, membership.left_seq = None, None
        membership.save(update_fields=["left_at", "left_seq"])
        publish_on_commit(
            events.conversation_member_changed(conversation=membership.conversation, user=user, left=False),
            user_ids=[request.requester.public_id, request.recipient.public_id],
        )
    return membership
