"""Services of tenant apps and their external identities (docs/tenants.md).

Used by the tenant server API (tenants/), the admin and the tests. Every service takes the app
acting (or administered) and touches only that app's users: an external id is always looked up
within the app. Revocations publish `session.revoked` on commit, which closes live connections
(gateway.hub).
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass

from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable

from . import events, moderation, selectors, services
from .identity import OPAQUE_MAX_LENGTH, external_id_valid, secret_digest
from .models import App, IdHandle, RegisteredToken, User, new_app_secret
from .signals import user_verified

logger = logging.getLogger(__name__)

DISPLAY_NAME_MAX_LENGTH = 100
AVATAR_URL_MAX_LENGTH = 500
NAME_PART_MAX_LENGTH = 50


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, {"field": field})


def _user_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such user in this app.", {"field": "user_id"})


# --- apps --------------------------------------------------------------------------------------


def app_create(
    *,
    name: object,
    verify_url: str = "",
    allowed_protocols: list[str] | None = None,
    owner: User | None = None,
) -> App:
    """A new tenant app with two fresh secrets, managed by `owner` (a first-party account that
    may use apps: see app_owner_check) when given."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or not is_storable(name):
        raise _invalid("name", "name must be 1 to 100 characters.")
    if owner is not None:
        app_owner_check(owner)
    app = App.objects.create(
        name=name.strip(),
        verify_url=verify_url or "",
        allowed_protocols=list(allowed_protocols or []),
        owner=owner,
    )
    logger.info("app %s created (owner %s)", app.public_id, owner.public_id if owner else None)
    return app


def app_deactivate(*, by: User, app_id: object) -> App:
    """Soft-delete an app for its owner (or a staff member): it is deactivated, so its secrets,
    tokens, registered tokens and handles are refused from now on, every credential issued so far
    is revoked and its users' live connections close. Nothing is deleted; an admin can
    reactivate it. An unknown, inactive or foreign app is not found (nothing tells them apart)."""
    app_owner_check(by)
    found = App.objects.filter(public_id=app_id, is_active=True) if isinstance(app_id, str) else None
    if found is not None and not by.is_staff:
        found = found.filter(owner=by)
    app = found.first() if found is not None else None
    if app is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such app.", {"field": "app_id"})
    now = timezone.now()
    with transaction.atomic():
        App.objects.filter(pk=app.pk).update(is_active=False, tokens_revoked_before=now, updated_at=now)
        publish_on_commit(
            events.app_sessions_revoked(app_id=app.public_id, reason="app_deactivated"),
            app_ids=[app.public_id],
        )
    app.is_active, app.tokens_revoked_before, app.updated_at = False, now, now
    logger.info("app %s deactivated by %s", app.public_id, by.public_id)
    return app


def app_key_rotate(*, app: App) -> tuple[int, str]:
    """Replace the older of the app's two secrets with a fresh one; the other stays valid, so
    tokens signed with it keep working while the tenant moves to the new one. Returns (slot,
    new secret). Live connections are not closed: their tokens were valid when presented and
    expire within CHAT TENANT_TOKEN_MAX_TTL_SECONDS; after a leak, also revoke the app's
    tokens (app_tokens_revoke)."""
    now = timezone.now()
    secret = new_app_secret()
    with transaction.atomic():
        app = App.objects.select_for_update().get(pk=app.pk)
        if app.secret_1_created_at <= app.secret_2_created_at:
            slot, app.secret_1, app.secret_1_created_at = 1, secret, now
            fields = ["secret_1", "secret_1_created_at", "updated_at"]
        else:
            slot, app.secret_2, app.secret_2_created_at = 2, secret, now
            fields = ["secret_2", "secret_2_created_at", "updated_at"]
        app.save(update_fields=fields)
    logger.info("app %s: secret %s rotated", app.public_id, slot)
    return slot, secret


def app_tokens_revoke(*, app: App) -> None:
    """Refuse every credential of the app's users issued before now and close their live
    connections (a leaked secret: rotate both keys, then revoke)."""
    with transaction.atomic():
        App.objects.filter(pk=app.pk).update(tokens_revoked_before=timezone.now(), updated_at=timezone.now())
        publish_on_commit(
            events.app_sessions_revoked(app_id=app.public_id, reason="tokens_revoked"),
            app_ids=[app.public_id],
        )
    logger.info("app %s: tokens revoked", app.public_id)


# --- app owners (seed 003's dashboard users) --------------------------------------------------
# First-party accounts (email, password, verified) that own apps; `is_staff` is the dashboard's
# "admin" scope: only staff register new owners.


def app_owner_check(user: User) -> None:
    """Only a usable first-party account may own and manage apps."""
    if user.is_external or not user.can_chat:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "This account cannot manage apps.")


def app_owner_authenticate(*, email: object, password: object) -> User:
    """Check a dashboard login: the product's password hashing and its per-address backoff
    (accounts.services). Every failure is authentication_failed, an unknown address, a wrong
    password and an unusable or unverified account alike, except the backoff (throttled). No
    login session is started: the dashboard's token is the caller's (stateless, short-lived)."""
    if not isinstance(email, str) or not isinstance(password, str):
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Incorrect email or password.")
    email = User.objects.normalize_email(email)
    services.login_backoff_check(email)
    user = selectors.user_get_by_email(email=email) if len(email) <= services.EMAIL_MAX_LENGTH else None
    too_long = len(password) > services.password_max_length()
    if user is None or too_long or user.is_external:
        make_password(password[: services.password_max_length()])  # the same work as a check
        services.login_failed(email)
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Incorrect email or password.")
    if not user.check_password(password):
        services.login_failed(email)
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Incorrect email or password.")
    services.login_failures_forget(email)
    if not user.can_chat:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Incorrect email or password.")
    return user


def _name_part(value: object, field: str, *, required: bool) -> str:
    if not isinstance(value, str) or len(value) > NAME_PART_MAX_LENGTH or not is_storable(value):
        raise _invalid(field, f"{field} must be a string of at most {NAME_PART_MAX_LENGTH} characters.")
    value = " ".join(value.split())
    if required and not value:
        raise _invalid(field, f"{field} is required.")
    return value


def app_owner_register(
    *, by: User, email: object, password: object, first_name: object, middle_name: object, last_name: object
) -> User:
    """A staff member creates a dashboard account: a verified first-party user (the staff member
    vouches for the address, as in the original, which had no verification), with the product's
    password policy and hashing. Everything is checked before anything is stored; an address
    already in use is a conflict."""
    if not by.is_staff:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only staff can register dashboard users.")
    app_owner_check(by)
    parts = [
        _name_part(first_name, "firstName", required=True),
        _name_part(middle_name, "middleName", required=False),
        _name_part(last_name, "lastName", required=True),
    ]
    display_name = " ".join(part for part in parts if part)
    if len(display_name) > DISPLAY_NAME_MAX_LENGTH:
        raise _invalid("lastName", f"The whole name must be at most {DISPLAY_NAME_MAX_LENGTH} characters.")
    if not isinstance(email, str):
        raise _invalid("email", "Enter a valid email address.")
    email = User.objects.normalize_email(email)
    try:
        if len(email) > services.EMAIL_MAX_LENGTH:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise _invalid("email", "Enter a valid email address.") from None
    if not isinstance(password, str) or len(password) > services.password_max_length():
        raise _invalid(
            "password",
            f"The password must be a string of at most {services.password_max_length()} characters.",
        )
    candidate = User(email=email, display_name=display_name)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as error:
        raise ApplicationError(ErrorCode.INVALID, " ".join(error.messages), {"field": "password"}) from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, display_name=display_name, email_verified=True)
            user_verified.send(sender=User, user=user)
    except IntegrityError:
        raise ApplicationError(ErrorCode.CONFLICT, "This email is already registered.") from None
    logger.info("dashboard user %s registered by %s", user.public_id, by.public_id)
    return user


# --- external users ----------------------------------------------------------------------------


def _clean_display_name(value: object, *, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > DISPLAY_NAME_MAX_LENGTH:
        raise _invalid(field, f"{field} must be 1 to {DISPLAY_NAME_MAX_LENGTH} characters.")
    if not is_storable(value):
        raise _invalid(field, f"{field} contains characters that cannot be stored.")
    return value.strip()


def _clean_avatar(value: object) -> str:
    if value in (None, ""):
        return ""
    if (
        not isinstance(value, str)
        or len(value) > AVATAR_URL_MAX_LENGTH
        or not value.startswith(("https://", "http://"))
        or not is_storable(value)
    ):
        raise _invalid("avatar_url", "avatar_url must be an http(s) URL of at most 500 characters.")
    return value


def external_id_clean(value: object) -> str:
    if not external_id_valid(value):
        raise _invalid("id", "A user id is 1 to 64 letters, digits, _ or - (no dots).")
    return value  # type: ignore[return-value]


def external_user_get(*, app: App, external_id: object) -> User:
    """One of the app's users by external id; not_found for any other id."""
    if not external_id_valid(external_id):
        raise _user_not_found()
    user = User.objects.select_related("app").filter(app=app, external_id=external_id).first()
    if user is None:
        raise _user_not_found()
    return user


def external_user_upsert(
    *, app: App, external_id: object, name: object = None, avatar_url: object = None
) -> tuple[User, bool]:
    """Create the app's user `external_id`, or update their name and avatar (what is given).
    Returns (user, created). Everything is validated before anything is stored."""
    external_id = external_id_clean(external_id)
    name = _clean_display_name(name) if name is not None else None
    avatar = _clean_avatar(avatar_url) if avatar_url is not None else None
    user = User.objects.filter(app=app, external_id=external_id).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User(
                    app=app,
                    external_id=external_id,
                    email=None,
                    display_name=name or external_id,
                    avatar_url=avatar or "",
                )
                user.set_unusable_password()
                user.save()
            return User.objects.select_related("app").get(pk=user.pk), True
        except IntegrityError:
            user = User.objects.get(app=app, external_id=external_id)
    fields = []
    if name is not None and name != user.display_name:
        user.display_name = name
        fields.append("display_name")
    if avatar is not None and avatar != user.avatar_url:
        user.avatar_url = avatar
        fields.append("avatar_url")
    if fields:
        user.save(update_fields=[*fields, "updated_at"])
    return User.objects.select_related("app").get(pk=user.pk), False


def user_tokens_revoke(*, app: App, external_id: object) -> User:
    """Refuse every credential of this user issued before now (tenant JWTs by `iat`, the
    registered token and handles by creation) and close their live connections."""
    user = external_user_get(app=app, external_id=external_id)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(tokens_revoked_before=timezone.now())
        publish_on_commit(
            events.session_revoked(user_id=user.public_id, sid=None, reason="tokens_revoked"),
            user_ids=[user.public_id],
        )
    logger.info("app %s: tokens of user %s revoked", app.public_id, user.public_id)
    return user


def external_user_deactivate(*, app: App, user_id: object) -> User:
    """Soft-delete one of the app's users, named by this server's public user id: the user can no
    longer connect (inactive), every credential issued so far is refused (revocation time now),
    the registered token is dropped, and live connections close. History and memberships stay
    (the original's soft delete kept the row too). Not found for any other app's user."""
    if not isinstance(user_id, str):
        raise _user_not_found()
    user = User.objects.select_related("app").filter(app=app, public_id=user_id, is_active=True).first()
    if user is None:
        raise _user_not_found()
    with transaction.atomic():
        now = timezone.now()
        User.objects.filter(pk=user.pk).update(is_active=False, tokens_revoked_before=now, updated_at=now)
        RegisteredToken.objects.filter(user=user).delete()
        publish_on_commit(
            events.session_revoked(user_id=user.public_id, sid=None, reason="user_deleted"),
            user_ids=[user.public_id],
        )
    logger.info("app %s: user %s deactivated", app.public_id, user.public_id)
    return User.objects.select_related("app").get(pk=user.pk)


# --- registered tokens (seed 003) and id handles -----------------------------------------------


def registered_token_set(*, app: App, external_id: object, token: object) -> User:
    """Register (or replace) the opaque token of one of the app's users; only its hash is kept.
    The user must exist (upsert first)."""
    if not isinstance(token, str) or not 8 <= len(token) <= OPAQUE_MAX_LENGTH:
        raise _invalid("token", f"token must be 8 to {OPAQUE_MAX_LENGTH} characters.")
    user = external_user_get(app=app, external_id=external_id)
    digest = secret_digest(token)
    with transaction.atomic():
        if RegisteredToken.objects.filter(app=app, token_hash=digest).exclude(user=user).exists():
            raise ApplicationError(ErrorCode.CONFLICT, "This token is registered for another user.")
        old = RegisteredToken.objects.select_for_update().filter(user=user).first()
        RegisteredToken.objects.update_or_create(
            user=user, defaults={"app": app, "token_hash": digest, "created_at": timezone.now()}
        )
        if old is not None and old.token_hash != digest:
            # The replaced token stops working at once: its live connections (session id
            # "r:<issued>", accounts.identity) are closed, not only its next handshake refused.
            publish_on_commit(
                events.session_revoked(
                    user_id=user.public_id,
                    sid=f"r:{math.ceil(old.created_at.timestamp())}",
                    reason="token_replaced",
                ),
                user_ids=[user.public_id],
            )
    return user


@dataclass(frozen=True)
class IssuedHandle:
    handle: IdHandle
    secret: str  # shown once; only its hash is stored


def id_handle_issue(*, app: App, external_id: object) -> IssuedHandle:
    """A new id handle (160 random bits) for one of the app's users."""
    user = external_user_get(app=app, external_id=external_id)
    secret = secrets.token_urlsafe(20)
    handle = IdHandle.objects.create(app=app, user=user, handle_hash=secret_digest(secret))
    logger.info("app %s: handle %s issued for user %s", app.public_id, handle.public_id, user.public_id)
    return IssuedHandle(handle, secret)


def id_handle_revoke(*, app: App, handle_id: object) -> IdHandle:
    """Revoke one of the app's handles (by its public id) and close the connections opened
    with it. Handles of other apps are not found."""
    handle = (
        IdHandle.objects.select_related("user").filter(app=app, public_id=handle_id).first()
        if isinstance(handle_id, str)
        else None
    )
    if handle is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such handle in this app.", {"field": "handle_id"})
    with transaction.atomic():
        if IdHandle.objects.filter(pk=handle.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            publish_on_commit(
                events.session_revoked(
                    user_id=handle.user.public_id, sid=f"h:{handle.public_id}", reason="revoked"
                ),
                user_ids=[handle.user.public_id],
            )
    handle.refresh_from_db()
    return handle


def app_authenticate(*, app_id: object, secret: object) -> App:
    """The app whose id and one of whose two secrets these are (the tenant server API)."""
    app = App.objects.filter(public_id=app_id, is_active=True).first() if isinstance(app_id, str) else None
    if app is None or not isinstance(secret, str):
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Unknown app or wrong key.")
    if not any(secrets.compare_digest(secret.encode(), s.encode()) for s in app.secrets):
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Unknown app or wrong key.")
    return app


# --- the same, by staff in the admin: checked and recorded in the moderation log --------------

PERMISSION_APPS = "accounts.change_app"


def _staff_check(moderator: User, reason: object) -> str:
    moderation.moderator_check(moderator=moderator, permission=PERMISSION_APPS)
    return moderation.moderation_reason_clean(reason)


def app_key_rotate_as_moderator(*, moderator: User, app: App, reason: object) -> tuple[int, str]:
    reason = _staff_check(moderator, reason)
    with transaction.atomic():
        slot, secret = app_key_rotate(app=app)
        moderation.moderation_action_record(
            moderator=moderator,
            action=moderation.Action.APP_KEY_ROTATE,
            target_type=moderation.TargetType.APP,
            target_id=app.public_id,
            reason=reason,
            extra={"slot": slot},
        )
    return slot, secret


def app_tokens_revoke_as_moderator(*, moderator: User, app: App, reason: object) -> None:
    reason = _staff_check(moderator, reason)
    with transaction.atomic():
        app_tokens_revoke(app=app)
        moderation.moderation_action_record(
            moderator=moderator,
            action=moderation.Action.APP_TOKENS_REVOKE,
            target_type=moderation.TargetType.APP,
            target_id=app.public_id,
            reason=reason,
        )


def user_tokens_revoke_as_moderator(*, moderator: User, user: User, reason: object) -> None:
    reason = _staff_check(moderator, reason)
    if user.app_id is None:
        raise ApplicationError(ErrorCode.INVALID, "Only a tenant app's users have tenant tokens.")
    with transaction.atomic():
        user_tokens_revoke(app=user.app, external_id=user.external_id)
        moderation.moderation_action_record(
            moderator=moderator,
            action=moderation.Action.USER_TOKENS_REVOKE,
            target_type=moderation.TargetType.USER,
            target_id=user.public_id,
            reason=reason,
            extra={"app": user.app.public_id},
        )


def id_handle_revoke_as_moderator(*, moderator: User, handle: IdHandle, reason: object) -> None:
    reason = _staff_check(moderator, reason)
    with transaction.atomic():
        id_handle_revoke(app=handle.app, handle_id=handle.public_id)
        moderation.moderation_action_record(
            moderator=moderator,
            action=moderation.Action.HANDLE_REVOKE,
            target_type=moderation.TargetType.HANDLE,
            target_id=handle.public_id,
            reason=reason,
            extra={"app": handle.app.public_id, "user": handle.user.public_id},
        )
