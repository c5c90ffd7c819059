"""Chat requests as their two users see them: the recipient's inbox, the requester's outbox,
one request. A request is visible to its requester and its recipient only."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import OuterRef, Subquery

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from ..models import ChatRequest, Message

RECEIVED = "received"
SENT = "sent"
PREVIEW_LENGTH = 200  # characters of the latest message a request shows


@dataclass(frozen=True)
class ChatRequestView:
    request: ChatRequest
    message_count: int  # messages written so far (the conversation's last seq)
    last_message: str | None  # the latest message's served text, cut to PREVIEW_LENGTH


def _views(queryset) -> list[ChatRequestView]:
    latest = (
        Message.objects.filter(
            conversation_id=OuterRef("conversation_id"), hidden_at__isnull=True, deleted_at__isnull=True
        )
        .order_by("-seq")
        .values("content")[:1]
    )
    rows = queryset.select_related("conversation", "requester", "recipient").annotate(latest=Subquery(latest))
    return [
        ChatRequestView(
            r, r.conversation.last_seq, r.latest[:PREVIEW_LENGTH] if r.latest is not None else None
        )
        for r in rows
    ]


def chat_requests_for_user(
    *, user: User, box: str = RECEIVED, state: str = ChatRequest.State.PENDING
) -> list[ChatRequestView]:
    """The requests made to the caller (`received`) or by the caller (`sent`) in one state,
    newest first, at most CHAT CONVERSATION_LIST_LIMIT. Two queries' worth: one with the preview
    as a subquery."""
    if box not in (RECEIVED, SENT):
        raise ApplicationError(ErrorCode.INVALID, 'box must be "received" or "sent".', {"field": "box"})
    if state not in ChatRequest.State.values:
        raise ApplicationError(
            ErrorCode.INVALID,
            f"state must be one of {', '.join(ChatRequest.State.values)}.",
            {"field": "state"},
        )
    mine = {"recipient": user} if box == RECEIVED else {"requester": user}
    queryset = ChatRequest.objects.filter(state=state, **mine).order_by("-created_at", "-pk")
    return _views(queryset[: settings.CHAT["CONVERSATION_LIST_LIMIT"]])


def chat_request_get(*, user: User, request_id: object) -> ChatRequestView:
    """One request of which the caller is the requester or the recipient; not found otherwise."""
    if not is_public_id(request_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such chat request.", {"field": "request_id"})
    found = _views(ChatRequest.objects.filter(public_id=request_id, requester=user)) or _views(
        ChatRequest.objects.filter(public_id=request_id, recipient=user)
    )
    if not found:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such chat request.", {"field": "request_id"})
    return found[0]


def chat_request_of_conversation(*, conversation_id: int) -> ChatRequest | None:
    """The request a conversation started as (by primary key), with its users."""
    return (
        ChatRequest.objects.select_related("requester", "recipient")
        .filter(conversation_id=conversation_id)
        .first()
    )
