"""Input and output shapes of the messaging API. Inputs are strict (JSON types, no unknown
fields); the rules on content (empty, length) live in the services, shared with the sockets.
Outputs carry public ids only, never integer keys, and timestamps as ISO-8601 UTC."""

from datetime import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from accounts.serializers import StrictBooleanField, StrictCharField, StrictSerializer
from chatproject.core.timefmt import iso_ms

from .events import attachment_payload, reply_payload
from .models import Attachment, ChatRequest, Conversation, Message
from .services import CLIENT_MESSAGE_ID_MAX, REACTION_EMOJI_MAX

# Sequence numbers are bigints; anything larger cannot name a message.
SEQ_MAX = 2**63 - 1
SEQ_MAX_DIGITS = len(str(SEQ_MAX))


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: DRF would also take "5", 5.0 and true."""

    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryIntegerField(serializers.IntegerField):
    """A query-string integer: decimal digits only (DRF would also take "5.0" and " 5")."""

    default_error_messages = {"invalid": "Must be a non-negative integer."}

    def get_value(self, dictionary: Any) -> Any:
        # DRF treats "?before=" as absent; an empty cursor is a client bug worth reporting.
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or not data.isascii() or not data.isdigit():
            self.fail("invalid")
        if len(data) > SEQ_MAX_DIGITS:
            self.fail("max_value", max_value=self.max_value)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.DATETIME)
class IsoTimeField(serializers.Field):
    """ISO-8601 UTC with milliseconds, like every timestamp on the wire."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: datetime) -> str | None:
        return iso_ms(value)


class DirectConversationInput(StrictSerializer):
    user_id = StrictCharField(max_length=64, help_text="Public id of the other user.")


class MessageSendInput(StrictSerializer):
    # Empty, blank-only and over-long content are refused by message_send (one rule for every
    # transport), so the serializer only insists on a string and keeps it as sent.
    content = StrictCharField(
        required=False,
        allow_null=True,
        trim_whitespace=False,
        allow_blank=True,
        help_text="Text of the message, 1 to CHAT MAX_MESSAGE_LENGTH characters, not only whitespace. "
        "Media messages: the caption, optional.",
    )
    kind = StrictCharField(
        required=False,
        allow_null=True,
        max_length=16,
        help_text="text (default), emoji (only emoji), or image, video, audio, file (with attachment_id; "
        "default: the upload's own kind).",
    )
    attachment_id = StrictCharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Id of the caller's upload (POST /api/uploads/) that no message uses yet.",
    )
    client_message_id = StrictCharField(
        required=False,
        allow_null=True,
        trim_whitespace=False,
        max_length=CLIENT_MESSAGE_ID_MAX,
        help_text="Chosen by the client; a retry with the same id returns the original message.",
    )
    reply_to = StrictCharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Id of a message of the same conversation that this one quotes.",
    )


class ReadInput(StrictSerializer):
    seq = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=SEQ_MAX,
        help_text="Read up to this sequence number (default: the newest message).",
    )
    # The forms other clients send; at most one of the three. Rules (existence, list length)
    # live in the service, shared with the sockets.
    message_ids = serializers.ListField(
        child=StrictCharField(max_length=64),
        required=False,
        allow_null=True,
        help_text="Read up to the newest of these messages (ids).",
    )
    last_message_id = StrictCharField(
        required=False, allow_null=True, max_length=64, help_text="Read up to this message (id)."
    )


class HistoryQuery(serializers.Serializer):
    # Query strings: other parameters (DRF's ?format=) are allowed.
    before = QueryIntegerField(
        required=False, min_value=0, max_value=SEQ_MAX, help_text="Only messages with a smaller seq."
    )
    after = QueryIntegerField(
        required=False,
        min_value=0,
        max_value=SEQ_MAX,
        help_text="Only messages with a larger seq, oldest first (catching up).",
    )
    limit = QueryIntegerField(
        required=False,
        min_value=1,
        max_value=SEQ_MAX,
        help_text="Page size; capped at CHAT HISTORY_MAX_PAGE_SIZE.",
    )


class UserRefOutput(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    display_name = serializers.CharField(read_only=True)


class ConversationOutput(serializers.Serializer):
    """A conversation as its member sees it (from a selectors.ConversationSummary)."""

    id = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=Conversation.Kind.choices, read_only=True)
    last_message_at = IsoTimeField()
    last_seq = serializers.IntegerField(read_only=True)
    last_rev = serializers.IntegerField(read_only=True, help_text="The latest change: a resync position.")
    last_read_seq = serializers.IntegerField(read_only=True)
    unread = serializers.IntegerField(read_only=True)
    partner = serializers.SerializerMethodField()
    title = serializers.CharField(read_only=True, allow_null=True)

    @extend_schema_field(UserRefOutput(allow_null=True))
    def get_partner(self, summary) -> dict[str, str] | None:
        if summary.partner_id is None:
            return None
        return {"id": summary.partner_id, "display_name": summary.partner_name}


class ConversationListOutput(serializers.Serializer):
    results = ConversationOutput(many=True, read_only=True)
    unread_total = serializers.IntegerField(read_only=True)


class ReplyOutput(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    seq = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True, help_text="The quoted message's kind.")
    sender_id = serializers.CharField(read_only=True, allow_null=True)
    sender_name = serializers.CharField(read_only=True, allow_null=True)
    excerpt = serializers.CharField(read_only=True, help_text="The first 100 characters; empty once deleted.")
    deleted = serializers.BooleanField(read_only=True)


class AttachmentOutput(serializers.Serializer):
    """An upload: what it is and where to fetch it. The URL is a capability (unguessable), valid
    until the message using it is deleted."""

    id = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=Attachment.Kind.choices, read_only=True)
    url = serializers.CharField(read_only=True)
    content_type = serializers.CharField(read_only=True, help_text="Recognised from the content.")
    size = serializers.IntegerField(read_only=True, help_text="Bytes.")
    name = serializers.CharField(read_only=True, help_text="The uploader's file name, cleaned.")
    width = serializers.IntegerField(read_only=True, allow_null=True, help_text="Images: as displayed.")
    height = serializers.IntegerField(read_only=True, allow_null=True)


class UploadOutput(AttachmentOutput):
    created_at = IsoTimeField()
    expires_at = IsoTimeField(help_text="Deleted then unless a message uses it.")


class UploadLimitsOutput(serializers.Serializer):
    max_bytes = serializers.IntegerField(read_only=True, help_text="Largest file.")
    max_image_pixels = serializers.IntegerField(read_only=True, help_text="Width x height of an image.")
    allowed_types = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        read_only=True,
        help_text="MIME type -> the file name extensions it may have.",
    )
    daily_bytes = serializers.IntegerField(read_only=True, help_text="Per user, rolling 24 hours.")
    max_unused = serializers.IntegerField(read_only=True, help_text="Uploads a user may hold unsent.")
    unused_ttl_seconds = serializers.IntegerField(
        read_only=True, help_text="An unsent upload is deleted then."
    )
    max_caption_length = serializers.IntegerField(read_only=True)


class UploadInput(StrictSerializer):
    file = serializers.FileField(allow_empty_file=True, help_text="The file (multipart/form-data).")


class ReactionOutput(serializers.Serializer):
    emoji = serializers.CharField(read_only=True)
    count = serializers.IntegerField(read_only=True)
    mine = serializers.BooleanField(read_only=True, help_text="The caller is one of them.")


class MessageOutput(serializers.ModelSerializer):
    """A message. `conversation` in the context spares a query per message in history pages;
    `reactions` (message pk -> selectors.ReactionCount list) gives the page's reactions.

    A message a moderator hid or deleted keeps its id and seq (no gap) but is served with empty
    `content` and `hidden` / `deleted` set."""

    id = serializers.CharField(source="public_id", read_only=True)
    conversation_id = serializers.SerializerMethodField()
    sender = serializers.SerializerMethodField()
    content = serializers.CharField(source="served_content", read_only=True)
    hidden = serializers.SerializerMethodField(help_text="A moderator hid the message; content is empty.")
    deleted = serializers.SerializerMethodField(help_text="The message was deleted; content is empty.")
    created_at = IsoTimeField()
    edited_at = IsoTimeField(allow_null=True)
    deleted_at = IsoTimeField(allow_null=True)
    reply_to = serializers.SerializerMethodField(help_text="The message this one quotes.")
    reactions = serializers.SerializerMethodField(help_text="Most used first; at most 50 emoji.")
    attachment = serializers.SerializerMethodField(
        help_text="Media messages: the file; null for other kinds and once deleted or hidden."
    )

    class Meta:
        model = Message
        fields = (
            "id",
            "seq",
            "rev",
            "conversation_id",
            "sender",
            "kind",
            "content",
            "client_message_id",
            "created_at",
            "edited_at",
            "deleted_at",
            "hidden",
            "deleted",
            "reply_to",
            "reactions",
            "attachment",
        )
        read_only_fields = fields

    def get_conversation_id(self, message: Message) -> str:
        if "conversation_id" in self.context:
            return self.context["conversation_id"]
        conversation = self.context.get("conversation") or message.conversation
        return conversation.public_id

    @extend_schema_field(UserRefOutput(allow_null=True))
    def get_sender(self, message: Message) -> dict[str, str] | None:
        sender = message.sender
        if sender is None:
            return None
        return {"id": sender.public_id, "display_name": sender.display_name}

    def get_hidden(self, message: Message) -> bool:
        return message.hidden_at is not None

    def get_deleted(self, message: Message) -> bool:
        return message.deleted_at is not None

    @extend_schema_field(ReplyOutput(allow_null=True))
    def get_reply_to(self, message: Message) -> dict[str, Any] | None:
        return reply_payload(message.reply_to) if message.reply_to_id else None

    @extend_schema_field(AttachmentOutput(allow_null=True))
    def get_attachment(self, message: Message) -> dict[str, Any] | None:
        return attachment_payload(message.served_attachment)

    @extend_schema_field(ReactionOutput(many=True))
    def get_reactions(self, message: Message) -> list[dict[str, Any]]:
        counts = (self.context.get("reactions") or {}).get(message.pk, ())
        return [{"emoji": r.emoji, "count": r.count, "mine": r.mine} for r in counts]


def message_outputs(
    messages: list[Message], *, conversation_id: str, reactions: dict
) -> list[dict[str, Any]]:
    """`MessageOutput(messages, many=True, context=...).data` for a page of history, in plain
    code: the same keys in the same order with the same values (tests/messaging/
    test_history_page.py compares the bytes of the two). DRF's per-field machinery cost 2.5 ms
    of CPU for a page of 50 on the bench machine, more than reading the page (bench/README.md,
    session 5). A field added to MessageOutput must be added here (checked at import)."""
    kinds = _KIND_REPRESENTATIONS
    found = []
    for m in messages:
        sender = m.sender
        removed = m.hidden_at is not None or m.deleted_at is not None
        counts = reactions.get(m.pk, ())
        client_message_id = m.client_message_id
        found.append(
            {
                "id": str(m.public_id),
                "seq": int(m.seq),
                "rev": int(m.rev),
                "conversation_id": conversation_id,
                "sender": None
                if sender is None
                else {"id": sender.public_id, "display_name": sender.display_name},
                "kind": None if m.kind is None else kinds.get(str(m.kind), m.kind),
                "content": "" if removed else str(m.content),
                "client_message_id": None if client_message_id is None else str(client_message_id),
                "created_at": iso_ms(m.created_at),
                "edited_at": iso_ms(m.edited_at),
                "deleted_at": iso_ms(m.deleted_at),
                "hidden": m.hidden_at is not None,
                "deleted": m.deleted_at is not None,
                "reply_to": reply_payload(m.reply_to) if m.reply_to_id else None,
                "reactions": [{"emoji": r.emoji, "count": r.count, "mine": r.mine} for r in counts],
                "attachment": attachment_payload(m.served_attachment),
            }
        )
    return found


# What MessageOutput's `kind` (a ChoiceField) renders each stored value as.
_KIND_REPRESENTATIONS = MessageOutput().fields["kind"].choice_strings_to_values
if tuple(MessageOutput.Meta.fields) != (
    "id", "seq", "rev", "conversation_id", "sender", "kind", "content", "client_message_id", "created_at",
    "edited_at", "deleted_at", "hidden", "deleted", "reply_to", "reactions", "attachment",
):  # fmt: skip
    raise RuntimeError("MessageOutput changed: change message_outputs with it")


class MessagePageOutput(serializers.Serializer):
    results = serializers.SerializerMethodField()
    next_before = serializers.IntegerField(read_only=True, allow_null=True)
    next_after = serializers.IntegerField(read_only=True, allow_null=True)

    @extend_schema_field(MessageOutput(many=True))
    def get_results(self, page) -> list[dict[str, Any]]:
        return message_outputs(
            page.messages, conversation_id=page.conversation.public_id, reactions=page.reactions
        )


class ReadOutput(serializers.Serializer):
    conversation_id = serializers.CharField(read_only=True)
    last_read_seq = serializers.IntegerField(read_only=True)


class DeliveredInput(StrictSerializer):
    seq = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=SEQ_MAX,
        help_text="Received up to this sequence number (default: the newest message).",
    )


class DeliveredOutput(serializers.Serializer):
    conversation_id = serializers.CharField(read_only=True)
    last_delivered_seq = serializers.IntegerField(read_only=True)


class SeenByOutput(serializers.Serializer):
    """Who read one message, and who only received it (from a selectors.SeenBy)."""

    message_id = serializers.CharField(source="message.public_id", read_only=True)
    seq = serializers.IntegerField(source="message.seq", read_only=True)
    seen_by = UserRefOutput(many=True, read_only=True, help_text="At most 100; see seen_count.")
    delivered_to = UserRefOutput(many=True, read_only=True, help_text="Received, not read yet; at most 100.")
    seen_count = serializers.IntegerField(read_only=True)
    delivered_count = serializers.IntegerField(read_only=True)


class MessageEditInput(StrictSerializer):
    content = StrictCharField(
        trim_whitespace=False,
        allow_blank=True,
        help_text="The new text; the rules of a send apply.",
    )


class MessageEditOutput(serializers.Serializer):
    """One earlier text of a message (from a messaging.models.MessageEdit)."""

    content = serializers.CharField(read_only=True, help_text="The text before this edit.")
    edited_at = IsoTimeField()
    editor = serializers.SerializerMethodField()

    @extend_schema_field(UserRefOutput(allow_null=True))
    def get_editor(self, edit) -> dict[str, str] | None:
        if edit.editor is None:
            return None
        return {"id": edit.editor.public_id, "display_name": edit.editor.display_name}


class MessageEditListOutput(serializers.Serializer):
    message_id = serializers.CharField(read_only=True)
    results = MessageEditOutput(many=True, read_only=True, help_text="Newest first; at most 200.")


class ReactionInput(StrictSerializer):
    # Length and character rules live in the services (shared with the sockets).
    emoji = StrictCharField(
        trim_whitespace=False,
        max_length=REACTION_EMOJI_MAX,
        help_text=f"1 to {REACTION_EMOJI_MAX} characters without spaces, usually one emoji.",
    )


class ReactionChangeOutput(serializers.Serializer):
    message_id = serializers.CharField(read_only=True)
    emoji = serializers.CharField(read_only=True)
    count = serializers.IntegerField(read_only=True, help_text="Members with this emoji on the message now.")
    changed = serializers.BooleanField(read_only=True, help_text="False when it was already so.")


class SyncInput(StrictSerializer):
    # The keys and their number are checked by selectors.conversation_changes (shared with the
    # sockets); unknown and foreign ids are answered `gone`, never refused.
    positions = serializers.DictField(
        child=StrictIntegerField(min_value=0, max_value=SEQ_MAX),
        required=False,
        default=dict,
        help_text="Conversation id -> the last revision the client has of it.",
    )
    all = StrictBooleanField(
        required=False, default=False, help_text="Also every other current conversation, from revision 0."
    )


class ConversationChangesOutput(serializers.Serializer):
    """What changed in one conversation (from a selectors.ConversationChanges)."""

    # Not a ChoiceField: with null allowed it would be a second "kind" enum in the schema.
    kind = serializers.CharField(
        read_only=True, allow_null=True, help_text="self, direct or group; null when gone."
    )
    messages = serializers.SerializerMethodField()
    last_rev = serializers.IntegerField(read_only=True, help_text="Send this as the next position.")
    reload = serializers.BooleanField(read_only=True, help_text="Too many changes: refetch the history.")
    more = serializers.BooleanField(read_only=True, help_text="No room in this answer: ask again.")
    left = serializers.BooleanField(read_only=True, help_text="You left: changes up to then.")
    gone = serializers.BooleanField(read_only=True, help_text="Unknown, deleted or not yours.")
    last_seq = serializers.IntegerField(read_only=True, help_text="The newest message's seq (0 when gone).")
    unread = serializers.IntegerField(read_only=True, help_text="Your unread count now.")
    read_pointers = serializers.DictField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="User id -> seq read up to, for the members whose receipts you may see.",
    )

    @extend_schema_field(MessageOutput(many=True))
    def get_messages(self, changes) -> list[dict[str, Any]]:
        context = {"conversation_id": changes.conversation_id, "reactions": changes.reactions}
        return MessageOutput(changes.messages, many=True, context=context).data


class SyncOutput(serializers.Serializer):
    conversations = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(child=ConversationChangesOutput()))
    def get_conversations(self, changes) -> dict[str, Any]:
        return {c.conversation_id: ConversationChangesOutput(c).data for c in changes}


class ChatRequestInput(StrictSerializer):
    user_id = StrictCharField(max_length=64, help_text="Public id of the user asked for a chat.")


class ChatRequestQuery(serializers.Serializer):
    box = serializers.ChoiceField(
        choices=["received", "sent"], required=False, default="received", help_text="Made to you, or by you."
    )
    state = serializers.ChoiceField(choices=ChatRequest.State.choices, required=False, default="pending")


class ChatRequestOutput(serializers.Serializer):
    """A chat request as its requester or recipient sees it (a selectors.ChatRequestView)."""

    id = serializers.CharField(source="request.public_id", read_only=True)
    state = serializers.ChoiceField(source="request.state", choices=ChatRequest.State.choices, read_only=True)
    conversation_id = serializers.CharField(source="request.conversation.public_id", read_only=True)
    requester = serializers.SerializerMethodField()
    recipient = serializers.SerializerMethodField()
    created_at = IsoTimeField(source="request.created_at")
    decided_at = IsoTimeField(source="request.decided_at", allow_null=True)
    message_count = serializers.IntegerField(read_only=True, help_text="Messages written so far.")
    last_message = serializers.CharField(
        read_only=True, allow_null=True, help_text="The latest message's text (its first 200 characters)."
    )

    @extend_schema_field(UserRefOutput)
    def get_requester(self, view) -> dict[str, str]:
        return {"id": view.request.requester.public_id, "display_name": view.request.requester.display_name}

    @extend_schema_field(UserRefOutput)
    def get_recipient(self, view) -> dict[str, str]:
        return {"id": view.request.recipient.public_id, "display_name": view.request.recipient.display_name}


class ChatRequestListOutput(serializers.Serializer):
    results = ChatRequestOutput(many=True, read_only=True)
