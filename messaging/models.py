from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chatproject.core.ids import new_message_id, new_public_id


class Conversation(models.Model):
    """A place messages are posted: a user's notes-to-self, a direct chat, or a group.

    `last_seq` is the sequence allocator: a send locks this row, bumps it and stores the message
    with the new value, so sequence numbers are gapless per conversation. Unread counts are
    `last_seq - member.last_read_seq`, so a send does no per-member work.

    `last_rev` is the revision allocator: every change members can see (a new message, an edit,
    a delete, a hide, a reaction) takes the next value under the same row lock and stamps the
    changed message with it. Seq numbers messages; rev orders every change, so a client that
    knows the last rev it saw can ask for exactly what changed since (`conversation_changes`).
    """

    class Kind(models.TextChoices):
        SELF = "self", "Notes to self"
        DIRECT = "direct", "Direct"
        GROUP = "group", "Group"

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # "self:<user pk>" or "direct:<low pk>:<high pk>": one self chat per user, one chat per pair;
    # "direct:<low pk>:<high pk>:<public id>": a pair's further chats, each started as a
    # non-distinct chat request (`chat_request_create(distinct=False)`: seed 002's rooms).
    unique_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # Display name of a group conversation (set by the groups app); empty for self and direct.
    title = models.CharField(max_length=100, blank=True)
    last_seq = models.BigIntegerField(default=0)
    last_rev = models.BigIntegerField(default=0)
    last_message_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set while a direct conversation is blocked (`conversation_block`): the send path refuses
    # new messages from both members, whatever protocol they use. A column of the row every
    # send already loads with the sender's membership, so the check costs no query.
    blocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(last_seq__gte=0), name="conversation_last_seq_gte_0"),
            models.CheckConstraint(condition=Q(last_rev__gte=0), name="conversation_last_rev_gte_0"),
            models.CheckConstraint(
                condition=Q(kind="group") | Q(unique_key__isnull=False),
                name="conversation_self_direct_have_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.public_id}"


class Membership(models.Model):
    """A user's place in a conversation: role and read pointer. Leaving keeps the row (with
    left_at and left_seq) so history stays readable up to the moment of leaving."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    last_read_seq = models.BigIntegerField(default=0)
    # Up to where one of the member's devices reported having received the messages (opt-in per
    # client, `message-delivered`). Reading implies delivery: the effective value is the larger.
    last_delivered_seq = models.BigIntegerField(default=0)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    left_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="membership_unique"),
            models.CheckConstraint(condition=Q(last_read_seq__gte=0), name="membership_read_seq_gte_0"),
            models.CheckConstraint(
                condition=Q(last_delivered_seq__gte=0), name="membership_delivered_seq_gte_0"
            ),
            # Leaving sets both: left_seq bounds what a former member can still read.
            models.CheckConstraint(
                condition=Q(left_at__isnull=True, left_seq__isnull=True)
                | Q(left_at__isnull=False, left_seq__isnull=False),
                name="membership_left_at_and_seq_together",
            ),
        ]
        indexes = [models.Index(fields=["user", "left_at"], name="membership_user_active")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class Attachment(models.Model):
    """A file a user uploaded (POST /api/uploads/) for a message.

    Its type is what its bytes are (messaging/media.py), never what the client said or the
    file's name suggests, and the stored name ends in that type's extension, so no storage
    backend or proxy serves an upload as HTML. The stored name holds a 128-bit random part:
    its URL is a capability, like the links of other chat servers' file stores.

    An attachment is used by at most one message (the message's one-to-one key) and only by
    its uploader. Unused ones are purged after CHAT UPLOAD_UNUSED_TTL_SECONDS; a deleted
    message's file is erased from storage at once and `removed_at` set.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"
        FILE = "file", "File"

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The storage name (unique: the serving view looks files up by it).
    file = models.FileField(max_length=255, unique=True)
    name = models.CharField(max_length=255)  # the uploader's file name, cleaned, for display
    content_type = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    size = models.BigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)  # images: as displayed
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(size__gte=0), name="attachment_size_gte_0"),
            models.CheckConstraint(
                condition=Q(kind="image", width__isnull=False, height__isnull=False)
                | (~Q(kind="image") & Q(width__isnull=True, height__isnull=True)),
                name="attachment_image_has_dimensions",
            ),
        ]
        # The daily quota sums a user's recent uploads; the purge finds old unused ones.
        indexes = [models.Index(fields=["uploader", "created_at"], name="attachment_uploader_at")]

    def __str__(self) -> str:
        return f"attachment {self.public_id} ({self.content_type})"


class Message(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        EMOJI = "emoji", "Emoji"  # only emoji: clients show it large
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"
        FILE = "file", "File"
        SYSTEM = "system", "System"  # membership changes and other facts, written by the server

    # Kinds whose message carries an attachment (and whose content is an optional caption).
    MEDIA_KINDS = frozenset({Kind.IMAGE, Kind.VIDEO, Kind.AUDIO, Kind.FILE})

    # Time-ordered (chatproject/core/ids.py), unique, without the `varchar_pattern_ops` copy
    # Django adds for LIKE queries on PostgreSQL (migration 0009: nothing searches ids by prefix).
    public_id = models.CharField(max_length=24, unique=True, default=new_message_id, editable=False)
    # No index of its own: (conversation, seq) and (conversation, rev) below lead with it.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    seq = models.BigIntegerField()
    # The conversation revision of the message's latest change (creation, edit, delete, hide,
    # reaction): unique per conversation, so "rev > n" is exactly what changed since n.
    rev = models.BigIntegerField(default=0)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TEXT)
    content = models.TextField()
    # NULL, not "", when absent: the idempotency constraint applies only to ids a client gave.
    client_message_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Set by a moderator: the text is kept (for moderators, in the admin) but never served.
    # A moderator's delete instead empties `content` and sets `deleted_at`: the text is gone.
    hidden_at = models.DateTimeField(null=True, blank=True)
    # The message this one quotes, always of the same conversation (checked by the send
    # service). SET_NULL: a reply outlives its target (targets are tombstoned, not removed).
    # Indexed only where set (Meta.indexes): for SET_NULL when a quoted message is removed.
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # Media messages only. PROTECT: an attachment in use is never purged.
    attachment = models.OneToOneField(
        Attachment, null=True, blank=True, on_delete=models.PROTECT, related_name="message"
    )

    class Meta:
        permissions = [("moderate_message", "Can hide and delete messages as a moderator")]
        indexes = [
            models.Index(fields=["reply_to"], condition=Q(reply_to__isnull=False), name="message_reply_to")
        ]
        constraints = [
            # Also the keyset index for history: (conversation, seq).
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_conversation_seq"),
            # Also the index of resync: (conversation, rev > position) in rev order.
            models.UniqueConstraint(fields=["conversation", "rev"], name="message_conversation_rev"),
            models.UniqueConstraint(
                fields=["conversation", "sender", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="message_idempotency",
            ),
            models.CheckConstraint(condition=Q(seq__gte=1), name="message_seq_gte_1"),
            models.CheckConstraint(
                condition=Q(kind__in=["image", "video", "audio", "file"], attachment__isnull=False)
                | (~Q(kind__in=["image", "video", "audio", "file"]) & Q(attachment__isnull=True)),
                name="message_media_has_attachment",
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.public_id} #{self.seq}"

    @property
    def served_content(self) -> str:
        """The text members may see: none once a moderator hid or deleted the message."""
        return "" if self.hidden_at is not None or self.deleted_at is not None else self.content

    @property
    def served_attachment(self) -> "Attachment | None":
        """The file members may see: none once the message was hidden or deleted."""
        if self.attachment_id is None or self.hidden_at is not None or self.deleted_at is not None:
            return None
        return self.attachment


class MessageEdit(models.Model):
    """One edit of a message: the text it replaced. Members can read a message's edits; a
    delete (by the sender, an admin or a moderator) erases them with the text."""

    # db_index off: the (message, edited_at) index below serves every lookup by message.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="edits", db_index=False)
    content = models.TextField()  # the content before this edit
    edited_at = models.DateTimeField(default=timezone.now)
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["message", "edited_at"], name="message_edit_message_at")]

    def __str__(self) -> str:
        return f"edit of {self.message_id} at {self.edited_at}"


class Reaction(models.Model):
    """One user's emoji on one message. Counts are computed from these rows (one grouped query
    per history page), never stored."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="reaction_unique"),
            models.CheckConstraint(condition=~Q(emoji=""), name="reaction_emoji_not_empty"),
        ]
        # History pages look reactions up by message: the index of the `message` foreign key
        # (Django creates it) serves them; no second one.

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"


class ChatRequest(models.Model):
    """A conversation that started as a request ("message requests"): the requester is its only
    member and may write; the recipient is not a member until they accept, so nothing of it
    reaches their conversation list, unread counts, presence or live events before that. They
    see the request itself (`chat_requests_for_user`, `chat_request.created`). Accepting adds
    their membership (the messages written so far then count as unread); declining ends the
    requester's membership, so the conversation takes no more messages.

    One request per conversation; `decided_at` is set exactly when the state left `pending`."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="chat_request")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(requester=models.F("recipient")), name="chat_request_two_users"
            ),
            models.CheckConstraint(
                condition=Q(state="pending", decided_at__isnull=True)
                | (~Q(state="pending") & Q(decided_at__isnull=False)),
                name="chat_request_decided_at_with_state",
            ),
        ]
        # The recipient's inbox and the requester's outbox: by user and state, newest first.
        indexes = [
            models.Index(fields=["recipient", "state", "created_at"], name="chat_request_recipient"),
            models.Index(fields=["requester", "state", "created_at"], name="chat_request_requester"),
        ]

    def __str__(self) -> str:
        return f"chat request {self.public_id} ({self.state})"
