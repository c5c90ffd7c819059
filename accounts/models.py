import re
import secrets

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


# External ids are the tenant's own user ids, opaque to us. No "." (seed 004 joins two ids with
# a dot into a room id), nothing a URL path or a log line would need to escape.
EXTERNAL_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
EXTERNAL_ID_MAX_LENGTH = 64


def new_app_secret() -> str:
    """A 256-bit app secret (URL-safe text, 43 characters)."""
    return secrets.token_urlsafe(32)


def mask_secret(secret: str) -> str:
    """What the admin and logs may show of a secret: enough to tell two apart, not to use one."""
    return f"{secret[:4]}…{secret[-4:]}" if len(secret) > 12 else "…"


class App(models.Model):
    """A tenant: a customer application whose users chat here (a realm of its own).

    Its backend signs HS256 tokens for its users with one of its two secrets, or registers
    tokens, or asks for id handles (docs/tenants.md). Two secrets are active at once so a key
    can be rotated without downtime: rotation replaces the older one.

    The secrets are stored as they are, not hashed: HS256 verification recomputes the MAC with
    the raw secret, so a hash would be useless. (Encrypting them with a key derived from
    SECRET_KEY would only move the problem: whoever reads the database of a running server
    usually reads its settings too, and a SECRET_KEY rotation would then break every app.)
    The admin only ever shows them masked, except once, right after they are made.
    """

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    secret_1 = models.CharField(max_length=64, default=new_app_secret)
    secret_1_created_at = models.DateTimeField(default=timezone.now)
    secret_2 = models.CharField(max_length=64, default=new_app_secret)
    secret_2_created_at = models.DateTimeField(default=timezone.now)
    # Seed 003's verifyUrl: when set, every tenant token is also checked there (GET
    # <url>?token=<token>, 2xx admits), see accounts/verification.py.
    verify_url = models.URLField(max_length=500, blank=True)
    # Protocol names (gateway.protocol.Protocol.name) this app's users may connect with;
    # empty: every protocol mounted for the apps realm.
    allowed_protocols = models.JSONField(default=list, blank=True)
    # Tokens (and registered tokens, and handles) issued before this instant are refused.
    tokens_revoked_before = models.DateTimeField(null=True, blank=True)
    # The first-party account that manages the app (seed 003's dashboard user; NULL for apps made
    # in the admin or by `app_create` without an owner; deleting the owner leaves the app ownerless).
    owner = models.ForeignKey(
        "User", on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_apps"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def secrets(self) -> tuple[str, str]:
        return (self.secret_1, self.secret_2)

    def allows_protocol(self, name: str) -> bool:
        return not self.allowed_protocols or name in self.allowed_protocols


class User(AbstractBaseUser, PermissionsMixin):
    """A person who chats. Clients only ever see `public_id`, never the integer key.

    A user belongs to exactly one realm: `app` None is the first-party realm (email and
    password accounts); otherwise the user is an external identity of that app, named by the
    app's own `external_id`, with no email and no usable password. Realms never see each other
    (accounts.selectors.users_in_realm).
    """

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    # Stored lower-cased (a check constraint holds it), so the plain unique index is also the
    # case-insensitive one and lookups are index hits. Null only for external users.
    email = models.EmailField(max_length=254, unique=True, null=True, blank=True)
    app = models.ForeignKey(App, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    # NULL, not "", for first-party users: the realm check constraint reads "has an external id"
    # as NOT NULL, the same way as for `email`.
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    avatar_url = models.CharField(max_length=500, blank=True)
    # Tenant tokens of this user issued before this instant are refused ("revoke tokens").
    tokens_revoked_before = models.DateTimeField(null=True, blank=True)
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
            # First-party users have an email and no external id; external users the reverse.
            models.CheckConstraint(
                condition=Q(app__isnull=True, email__isnull=False, external_id__isnull=True)
                | Q(app__isnull=False, email__isnull=True, external_id__isnull=False),
                name="user_realm_identity",
            ),
            models.UniqueConstraint(
                fields=["app", "external_id"],
                condition=Q(app__isnull=False),
                name="user_external_id_unique_per_app",
            ),
        ]
        indexes = [models.Index(Lower("display_name"), name="user_display_name_lower")]

    def __str__(self) -> str:
        if self.app_id is not None:
            return f"{self.display_name} [{self.external_id}@app {self.app_id}]"
        return f"{self.display_name} <{self.email}>"

    @property
    def is_external(self) -> bool:
        return self.app_id is not None

    @property
    def can_chat(self) -> bool:
        """Verified (first-party: the email; external: by the tenant that made them), active and
        not banned: the only users allowed to log in or connect."""
        verified = self.email_verified or self.app_id is not None
        return verified and self.is_active and not self.is_banned


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
        APP_KEY_ROTATE = "app_key_rotate", "Rotate app key"
        APP_TOKENS_REVOKE = "app_tokens_revoke", "Revoke app tokens"
        USER_TOKENS_REVOKE = "user_tokens_revoke", "Revoke user tokens"
        HANDLE_REVOKE = "handle_revoke", "Revoke id handle"

    class TargetType(models.TextChoices):
        USER = "user", "User"
        MESSAGE = "message", "Message"
        GROUP = "group", "Group"
        APP = "app", "App"
        HANDLE = "handle", "Id handle"

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


class RegisteredToken(models.Model):
    """Seed 003's per-user token: the tenant registers an opaque token for one of its users
    and the user's client presents it. One per user, replaced on re-registration; only its
    keyed hash is stored (accounts.identity.secret_digest), looked up within the app."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="registered_tokens")
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="registered_token")
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app", "token_hash"], name="registered_token_unique_per_app"),
        ]

    def __str__(self) -> str:
        return f"registered token of {self.user_id}"


class IdHandle(models.Model):
    """A credential for clients that can present nothing but an id (seeds 001 and 002): a
    random 160-bit string the server issues per identity. Knowing it is the credential, so only
    its keyed hash is stored, and it is shown once, when issued. `public_id` names it for
    revocation and in the admin; it is not a credential."""

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="id_handles")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="id_handles")
    handle_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"], name="id_handle_user_live")]

    def __str__(self) -> str:
        return f"handle {self.public_id} of {self.user_id}"


class Friendship(models.Model):
    """One side of a friendship: `user` counts `friend` among their contacts. Friendship is
    symmetric, so it is always two rows, written together (accounts.friends): one query lists a
    user's friends, and the unique pair makes a repeated add a no-op. Both users are of one realm
    (the services check it)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="friendships")
    friend = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "friend"], name="friendship_unique"),
            models.CheckConstraint(condition=~Q(user=models.F("friend")), name="friendship_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.friend_id}"
