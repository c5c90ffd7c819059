"""Native REST API of the messaging app (/api/conversations/...).

Each view validates its input with a strict serializer, takes the caller from the Bearer token,
calls the same services and selectors as the sockets and renders the result. A conversation the
caller is not a member of is answered exactly like one that does not exist: 404.
"""

from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from accounts.http import BoundedJSONParser
from chatproject.core.api import error_responses as _errors
from chatproject.core.api import validated as _validated
from chatproject.core.files import ranged_file_response

from . import selectors, services, uploads
from .events import attachment_payload
from .models import Attachment
from .serializers import (
    ChatRequestInput,
    ChatRequestListOutput,
    ChatRequestOutput,
    ChatRequestQuery,
    ConversationListOutput,
    ConversationOutput,
    DeliveredInput,
    DeliveredOutput,
    DirectConversationInput,
    HistoryQuery,
    MessageEditInput,
    MessageEditListOutput,
    MessageOutput,
    MessagePageOutput,
    MessageSendInput,
    ReactionChangeOutput,
    ReactionInput,
    ReadInput,
    ReadOutput,
    SeenByOutput,
    SyncInput,
    SyncOutput,
    UploadInput,
    UploadLimitsOutput,
    UploadOutput,
)

TAGS = ["conversations"]
CONVERSATION_ID = OpenApiParameter(
    "conversation_id", str, OpenApiParameter.PATH, description="Public id of the conversation"
)


class ConversationListApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="conversations_list",
        responses={200: ConversationListOutput, **_errors(401, 403)},
        summary="The caller's conversations, most recent activity first, with unread counts",
    )
    def get(self, request: Request) -> Response:
        """Called to show the conversation list. Reading it marks nothing as read."""
        summaries = selectors.conversation_list_for_user(user=request.user)
        total = selectors.unread_total(user=request.user)
        return Response(ConversationListOutput({"results": summaries, "unread_total": total}).data)


class DirectConversationApi(APIView):
    parser_classes = (BoundedJSONParser,)

    @extend_schema(
        tags=TAGS,
        request=DirectConversationInput,
        responses={200: ConversationOutput, 201: ConversationOutput, **_errors(400, 401, 403, 404, 413, 415)},
        summary="Open the direct chat with a user (201 when created, 200 when it existed)",
    )
    def post(self, request: Request) -> Response:
        """Called to start (or reopen) a one-to-one chat."""
        data = _validated(DirectConversationInput, request.data)
        conversation, _partner, created = services.direct_conversation_get_or_create(
            user=request.user, other_user_id=data["user_id"]
        )
        # Rendered like a list entry (read pointer, unread), which the service does not return.
        summary = selectors.conversation_summary_get(
            user=request.user, conversation_id=conversation.public_id
        )
        return Response(ConversationOutput(summary).data, status=201 if created else 200)


class ConversationLeaveApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="conversations_leave",
        parameters=[CONVERSATION_ID],
        request=None,
        responses={204: None, **_errors(401, 403, 404, 409)},
        summary="Leave a chat that started as a request of its own (409 for the pair's one chat)",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        """Called when a user leaves a two-party chat that began as a request with a chat of its
        own (seed 002's rooms): nothing more of it reaches them, the history up to here stays
        readable, the other user is told. Idempotent."""
        services.conversation_leave(user=request.user, conversation_id=conversation_id)
        return Response(status=204)


class ConversationRejoinApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="conversations_rejoin",
        parameters=[CONVERSATION_ID],
        request=None,
        responses={200: ConversationOutput, **_errors(401, 403, 404, 409)},
        summary="Come back to a chat you left (former members only; 403 after a declined request)",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        """Called when a user who left a chat comes back: what was written meanwhile is unread."""
        services.conversation_rejoin(user=request.user, conversation_id=conversation_id)
        summary = selectors.conversation_summary_get(user=request.user, conversation_id=conversation_id)
        return Response(ConversationOutput(summary).data)


class MessageSendThrottle(UserRateThrottle):
    """The REST twin of the socket's per-user event budget: sends only, reads stay free."""

    scope = "message_send"

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # read per request, like the auth throttles
        return api_settings.DEFAULT_THROTTLE_RATES

    def allow_request(self, request: Request, view) -> bool:
        return request.method != "POST" or super().allow_request(request, view)


class MessageListApi(APIView):
    parser_classes = (BoundedJSONParser,)
    throttle_classes = (MessageSendThrottle,)

    @extend_schema(
        tags=TAGS,
        operation_id="conversations_messages_list",
        parameters=[CONVERSATION_ID, HistoryQuery],
        responses={200: MessagePageOutput, **_errors(400, 401, 403, 404)},
        summary="A page of history: newest first, or oldest first after `after`",
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        """Called to scroll back (`before`) or to catch up after a gap (`after`)."""
        query = _validated(HistoryQuery, request.query_params)
        page = selectors.message_page(user=request.user, conversation_id=conversation_id, **query)
        return Response(MessagePageOutput(page).data)

    @extend_schema(
        tags=TAGS,
        operation_id="conversations_messages_create",
        parameters=[CONVERSATION_ID],
        request=MessageSendInput,
        responses={200: MessageOutput, 201: MessageOutput, **_errors(400, 401, 403, 404, 413, 415, 429)},
        summary="Send a message (201; 200 with the original on a retry with the same client_message_id)",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        """Called to send a message; delivered live exactly like a socket send."""
        data = _validated(MessageSendInput, request.data)
        message, created = services.message_send(
            user=request.user,
            conversation_id=conversation_id,
            content=data.get("content"),
            client_message_id=data.get("client_message_id"),
            reply_to=data.get("reply_to"),
            message_kind=data.get("kind"),
            attachment_id=data.get("attachment_id"),
        )
        return Response(MessageOutput(message).data, status=201 if created else 200)


class ConversationReadApi(APIView):
    parser_classes = (BoundedJSONParser,)

    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID],
        request=ReadInput,
        responses={200: ReadOutput, **_errors(400, 401, 403, 404, 413, 415)},
        summary="Move the caller's read pointer forward (never backwards)",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        """Called when the user has seen the conversation up to `seq` (default: the newest)."""
        data = _validated(ReadInput, request.data)
        conversation, pointer = services.conversation_mark_read(
            user=request.user,
            conversation_id=conversation_id,
            up_to_seq=data.get("seq"),
            message_ids=data.get("message_ids"),
            last_message_id=data.get("last_message_id"),
        )
        return Response(
            ReadOutput({"conversation_id": conversation.public_id, "last_read_seq": pointer}).data
        )


MESSAGE_ID = OpenApiParameter(
    "message_id", str, OpenApiParameter.PATH, description="Public id of the message"
)


class ConversationDeliveredApi(APIView):
    parser_classes = (BoundedJSONParser,)

    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID],
        request=DeliveredInput,
        responses={200: DeliveredOutput, **_errors(400, 401, 403, 404, 413, 415)},
        summary="Report that a device received the messages up to `seq` (delivered receipts, opt-in)",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        """Called by a client that shows delivered receipts, when messages reached the device."""
        data = _validated(DeliveredInput, request.data)
        conversation, pointer = services.conversation_mark_delivered(
            user=request.user, conversation_id=conversation_id, up_to_seq=data.get("seq")
        )
        return Response(
            DeliveredOutput({"conversation_id": conversation.public_id, "last_delivered_seq": pointer}).data
        )


class MessageSeenByApi(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID, MESSAGE_ID],
        responses={200: SeenByOutput, **_errors(401, 403, 404)},
        summary="Who read a message and who only received it (403 while your read receipts are off)",
    )
    def get(self, request: Request, conversation_id: str, message_id: str) -> Response:
        """Called to show a message's receipts."""
        seen = selectors.message_seen_by(
            user=request.user, conversation_id=conversation_id, message_id=message_id
        )
        return Response(SeenByOutput(seen).data)


# --- edits, deletes and reactions -----------------------------------------------------------


class MessageChangeThrottle(MessageSendThrottle):
    """Edits, deletes and reactions spend the same budget as sends; reads stay free."""

    def allow_request(self, request: Request, view) -> bool:
        return request.method in SAFE_METHODS or UserRateThrottle.allow_request(self, request, view)


class MessageDetailApi(APIView):
    parser_classes = (BoundedJSONParser,)
    throttle_classes = (MessageChangeThrottle,)

    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID, MESSAGE_ID],
        request=MessageEditInput,
        responses={200: MessageOutput, **_errors(400, 401, 403, 404, 409, 413, 415, 429)},
        summary="Edit one's own message (the previous text goes to its edit history)",
    )
    def patch(self, request: Request, conversation_id: str, message_id: str) -> Response:
        """Called when the sender changes a message's text; members see it live."""
        data = _validated(MessageEditInput, request.data)
        message = services.message_edit(
            user=request.user, conversation_id=conversation_id, message_id=message_id, content=data["content"]
        )
        return Response(MessageOutput(message).data)

    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID, MESSAGE_ID],
        request=None,
        responses={204: None, **_errors(401, 403, 404, 409, 429)},
        summary="Delete a message (the sender, or a group's owner or admins); a tombstone stays",
    )
    def delete(self, request: Request, conversation_id: str, message_id: str) -> Response:
        """Called to delete a message; members see it removed live."""
        services.message_delete(user=request.user, conversation_id=conversation_id, message_id=message_id)
        return Response(status=204)


class MessageEditListApi(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID, MESSAGE_ID],
        responses={200: MessageEditListOutput, **_errors(401, 403, 404)},
        summary="A message's earlier texts, newest first (every member may read them)",
    )
    def get(self, request: Request, conversation_id: str, message_id: str) -> Response:
        """Called to show what an edited message said before."""
        message, edits = selectors.message_edits(
            user=request.user, conversation_id=conversation_id, message_id=message_id
        )
        return Response(MessageEditListOutput({"message_id": message.public_id, "results": edits}).data)


class MessageReactionApi(APIView):
    parser_classes = (BoundedJSONParser,)
    throttle_classes = (MessageChangeThrottle,)

    def _render(self, message, emoji: str, count: int, changed: bool, status: int = 200) -> Response:
        payload = {"message_id": message.public_id, "emoji": emoji, "count": count, "changed": changed}
        return Response(ReactionChangeOutput(payload).data, status=status)

    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID, MESSAGE_ID],
        request=ReactionInput,
        responses={
            200: ReactionChangeOutput,
            201: ReactionChangeOutput,
            **_errors(400, 401, 403, 404, 409, 413, 415, 429),
        },
        summary="Put an emoji on a message (201; 200 when it was there already)",
    )
    def post(self, request: Request, conversation_id: str, message_id: str) -> Response:
        """Called when a member reacts to a message."""
        data = _validated(ReactionInput, request.data)
        message, count, added = services.reaction_add(
            user=request.user, conversation_id=conversation_id, message_id=message_id, emoji=data["emoji"]
        )
        return self._render(message, data["emoji"], count, added, status=201 if added else 200)

    @extend_schema(
        tags=TAGS,
        parameters=[CONVERSATION_ID, MESSAGE_ID],
        request=ReactionInput,
        responses={200: ReactionChangeOutput, **_errors(400, 401, 403, 404, 413, 415, 429)},
        summary="Take one's emoji off a message (200 also when it was not there)",
    )
    def delete(self, request: Request, conversation_id: str, message_id: str) -> Response:
        """Called when a member takes their reaction back."""
        data = _validated(ReactionInput, request.data)
        message, count, removed = services.reaction_remove(
            user=request.user, conversation_id=conversation_id, message_id=message_id, emoji=data["emoji"]
        )
        return self._render(message, data["emoji"], count, removed)


class SyncApi(APIView):
    parser_classes = (BoundedJSONParser,)

    @extend_schema(
        tags=TAGS,
        operation_id="sync",
        request=SyncInput,
        responses={200: SyncOutput, **_errors(400, 401, 403, 413, 415)},
        summary="What changed in your conversations since the revisions you have (resync)",
    )
    def post(self, request: Request) -> Response:
        """Called after a disconnect, or when a live event's rev shows a hole. A read, but a
        POST: the positions are a body (up to CHAT CONVERSATION_LIST_LIMIT of them)."""
        data = _validated(SyncInput, request.data)
        changes = selectors.conversation_changes(
            user=request.user, positions=data["positions"], include_all=data["all"]
        )
        return Response(SyncOutput(changes).data)


# --- uploads --------------------------------------------------------------------------------

UPLOAD_TAGS = ["uploads"]


class UploadThrottle(MessageSendThrottle):
    """Uploads have their own budget (THROTTLE_UPLOADS): a file costs far more than a message."""

    scope = "upload"


def _upload_output(attachment: Attachment) -> dict:
    ttl = timedelta(seconds=settings.CHAT["UPLOAD_UNUSED_TTL_SECONDS"])
    return UploadOutput(
        attachment_payload(attachment)
        | {"created_at": attachment.created_at, "expires_at": attachment.created_at + ttl}
    ).data


class UploadApi(APIView):
    # Multipart only; the body's size is bounded before Django reads it (chatproject/core/body_limit.py).
    parser_classes = (MultiPartParser,)
    throttle_classes = (UploadThrottle,)

    @extend_schema(
        tags=UPLOAD_TAGS,
        operation_id="uploads_create",
        request={"multipart/form-data": UploadInput},
        responses={201: UploadOutput, **_errors(400, 401, 403, 413, 415, 429)},
        summary="Upload a file for a media message (type checked on the content)",
    )
    def post(self, request: Request) -> Response:
        """Called before sending an image, video, audio or file message: the answer's `id` goes
        into the send's `attachment_id`."""
        data = _validated(UploadInput, request.data)
        file = data["file"]
        attachment = uploads.upload_create(
            user=request.user,
            file=file,
            name=file.name or "",
            size=file.size,
            declared_type=file.content_type or "",
        )
        return Response(_upload_output(attachment), status=201)


class UploadLimitsApi(APIView):
    @extend_schema(
        tags=UPLOAD_TAGS,
        operation_id="uploads_limits",
        responses={200: UploadLimitsOutput, **_errors(401, 403)},
        summary="What this server accepts: file size, image canvas, types, per-user budgets",
    )
    def get(self, request: Request) -> Response:
        """Called by a client before it offers a file, so it can refuse what the server would."""
        return Response(UploadLimitsOutput(uploads.upload_limits()).data)


class UploadDetailApi(APIView):
    @extend_schema(
        tags=UPLOAD_TAGS,
        parameters=[OpenApiParameter("attachment_id", str, OpenApiParameter.PATH)],
        request=None,
        responses={204: None, **_errors(401, 403, 404, 409)},
        summary="Delete one's own upload that no message uses",
    )
    def delete(self, request: Request, attachment_id: str) -> Response:
        """Called when the user drops a file they uploaded but did not send."""
        uploads.upload_delete(user=request.user, attachment_id=attachment_id)
        return Response(status=204)


@require_safe
def media_file(request: HttpRequest, name: str) -> HttpResponse:
    """Serves an uploaded file from the local storage at MEDIA_URL (CHAT SERVE_MEDIA).

    The URL is the capability: no login, as with other chat servers' file links, so that old
    clients showing the link and <img>/<video> elements can fetch it. What a file server would
    not do: a deleted message's file, or a hidden one's, is gone (404); the type is the one
    recognised at upload, never guessed; nothing is ever rendered as a page (nosniff, a
    sandboxing CSP, and non-media types as downloads); byte ranges work, for video seeking.
    """
    attachment = selectors.attachment_for_serving(name=name)
    if attachment is None:
        raise Http404
    try:
        handle = default_storage.open(attachment.file.name, "rb")
    except FileNotFoundError:
        raise Http404 from None
    return ranged_file_response(
        request,
        handle,
        size=attachment.size,
        # Text is stored only when it is UTF-8 (messaging/media.py): say so, never let a
        # browser guess.
        content_type=attachment.content_type
        + ("; charset=utf-8" if attachment.content_type == "text/plain" else ""),
        filename=attachment.name,
        inline=attachment.kind != Attachment.Kind.FILE,
        etag=attachment.public_id,
    )


REQUEST_TAGS = ["chat requests"]
REQUEST_ID = OpenApiParameter(
    "request_id", str, OpenApiParameter.PATH, description="Public id of the chat request"
)


class ChatRequestListApi(APIView):
    parser_classes = (BoundedJSONParser,)

    @extend_schema(
        tags=REQUEST_TAGS,
        operation_id="chat_requests_list",
        parameters=[ChatRequestQuery],
        responses={200: ChatRequestListOutput, **_errors(400, 401, 403)},
        summary="Chat requests made to you (box=received) or by you (box=sent), newest first",
    )
    def get(self, request: Request) -> Response:
        """Called to show the requests waiting for an answer (or those already decided)."""
        query = _validated(ChatRequestQuery, request.query_params)
        views = selectors.chat_requests_for_user(user=request.user, box=query["box"], state=query["state"])
        return Response(ChatRequestListOutput({"results": views}).data)

    @extend_schema(
        tags=REQUEST_TAGS,
        operation_id="chat_requests_create",
        request=ChatRequestInput,
        responses={
            200: ChatRequestOutput,
            201: ChatRequestOutput,
            **_errors(400, 401, 403, 404, 409, 413, 415),
        },
        summary="Ask a user for a chat (201; 200 for your pending request again, or theirs accepted)",
    )
    def post(self, request: Request) -> Response:
        """Called to start a conversation as a request: you may write at once; the other user
        sees it only as a request until they accept. 409 when you already chat."""
        data = _validated(ChatRequestInput, request.data)
        made, created = services.chat_request_create(user=request.user, other_user_id=data["user_id"])
        view = selectors.chat_request_get(user=request.user, request_id=made.public_id)
        return Response(ChatRequestOutput(view).data, status=201 if created else 200)


class ChatRequestDetailApi(APIView):
    @extend_schema(
        tags=REQUEST_TAGS,
        operation_id="chat_requests_retrieve",
        parameters=[REQUEST_ID],
        responses={200: ChatRequestOutput, **_errors(401, 403, 404)},
        summary="One chat request you made or received",
    )
    def get(self, request: Request, request_id: str) -> Response:
        """Called to show one request."""
        return Response(
            ChatRequestOutput(selectors.chat_request_get(user=request.user, request_id=request_id)).data
        )


class ChatRequestDecisionApi(APIView):
    """POST .../accept/ and .../decline/ (the decision is the view's `decision`)."""

    decision = "accept"

    @extend_schema(
        tags=REQUEST_TAGS,
        parameters=[REQUEST_ID],
        request=None,
        responses={200: ChatRequestOutput, **_errors(401, 403, 404, 409)},
        summary="Accept (or decline) a chat request made to you",
    )
    def post(self, request: Request, request_id: str) -> Response:
        """Called when the recipient answers a request. Accepting makes them a member (the
        conversation, its unread messages and its live events reach them from then on);
        declining ends the requester's membership. Both are idempotent."""
        decide = services.chat_request_accept if self.decision == "accept" else services.chat_request_decline
        decided = decide(user=request.user, request_id=request_id)
        view = selectors.chat_request_get(user=request.user, request_id=decided.public_id)
        return Response(ChatRequestOutput(view).data)
