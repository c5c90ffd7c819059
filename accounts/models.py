from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from chatproject.core.ids import new_public_id


class UserManager(BaseUserManager["User"]):
    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return (email or "").strip().lower()

    def get_by_natural_key(self, username: str) -> "User":
        return self.get(email=self.normalize_email(username))

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        fields.setdefault("email_verified", True)
        fields.setdefault("display_name", email.split("@")[0])
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who chats. Clients only ever see `public_id`, never the integer key."""

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    # Stored lower-cased (a check constraint holds it), so the plain unique index is also the
    # case-insensitive one and lookups are index hits.
    email = models.EmailField(max_length=254, unique=True)
    display_name = models.CharField(max_length=100)
    email_verified = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_banned = models.BooleanField(default=False)
    banned_at = models.DateTimeField(null=True, blank=True)
    ban_reason = models.CharField(max_length=500, blank=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Presence and receipts (gateway/presence.py). `last_seen_at` is written when a
    # connection ends and periodically while connected, never per event.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Others always see this user as offline, without a last-seen time.
    presence_hidden = models.BooleanField(default=False)
    # Off: this user's read and delivered receipts reach nobody, and they see nobody's.
    read_receipts_enabled = models.BooleanField(default=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(email=Lower("email")), name="user_email_lowercase"),
        ]
        indexes = [models.Index(Lower("display_name"), name="user_display_name_lower")]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.email}>"

    @property
    def can_chat(self) -> bool:
        """Verified, active and not banned: the only users allowed to log in or connect."""
        return self.email_verified and self.is_active and not self.is_banned


class EmailVerification(models.Model):
    """One pending verification code per user. The code is stored as an HMAC, never in clear.

    The password chosen at signup waits here until the code is used, so a second signup for an
    unverified address (by anyone) cannot change the password of the person who owns the mailbox:
    the password that wins is the one sent with the code that was actually verified.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="verification")
    code_hash = models.CharField(max_length=64)
    pending_password = models.CharField(max_length=256, blank=True)
    pending_display_name = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"verification for {self.user_id}"


class LoginSession(models.Model):
    """One login (a refresh-token family). Tokens carry its `sid`; logout revokes it, and the
    realtime layer disconnects every socket opened with a token of a revoked session."""

    sid = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"session {self.sid} of {self.user_id}"


class ModerationAction(models.Model):
    """One thing a moderator did, kept for the record: who, what, to which object, when, why.

    Rows are written by the moderation services in the transaction that made the change, so an
    action that rolled back leaves no record and a committed one always has it. The target is
    named by its public id (a string), not a foreign key: the record outlives a deleted group or
    message. The moderator is protected: an account with a moderation history is deactivated,
    not deleted, so "who" is never lost.
    """

    REASON_MAX_LENGTH = 500

    class Action(models.TextChoices):
        USER_BAN = "user_ban", "Ban user"
        USER_UNBAN = "user_unban", "Unban user"
        MESSAGE_HIDE = "message_hide", "Hide message"
        MESSAGE_DELETE = "message_delete", "Delete message"
        GROUP_MEMBER_REMOVE = "group_member_remove", "Remove group member"
        GROUP_ROLE_CHANGE = "group_role_change", "Change group role"
        GROUP_DELETE = "group_delete", "Delete group"

    class TargetType(models.TextChoices):
        USER = "user", "User"
        MESSAGE = "message", "Message"
        GROUP = "group", "Group"

    moderator = models.ForeignKey(User, on_delete=models.PROTECT, related_name="moderation_actions")
    action = models.CharField(max_length=32, choices=Action.choices)
    target_type = models.CharField(max_length=16, choices=TargetType.choices)
    target_id = models.CharField(max_length=24)
    reason = models.CharField(max_length=REASON_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)
    # Facts worth keeping next to the reason: the conversation and sender of a message, the
    # roles before and after, a deleted group's name. Ids and names only, never message text.
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="moderation_action_reason_required"),
        ]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="moderation_action_target"),
            models.Index(fields=["-created_at"], name="moderation_action_created"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type} {self.target_id}"
