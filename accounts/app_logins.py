"""Username-and-password accounts of a tenant app's users, answered with id handles (seed 001's
clients can present nothing but an id they were given: accounts.identity, `id_handle`).

The username is the user's external id in the app (1 to 64 letters, digits, _ or -; the app's
unique key, compared exactly) and their display name. Passwords follow the product's policy and
are hashed like first-party passwords; failed logins back off per app and username like
first-party logins (accounts.services `login_failed`). A successful login issues a fresh handle;
a user keeps at most CHAT APP_LOGIN_HANDLES_MAX live handles (the oldest are revoked), so logging
in again and again cannot pile credentials up.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from chatproject.core.errors import ApplicationError, ErrorCode

from . import services, tenancy
from .identity import external_id_valid
from .models import App, IdHandle, User

logger = logging.getLogger(__name__)

USERNAME_MIN_LENGTH = 2  # seed 001's client renders the first two letters of a name
WRONG = "Wrong username/password"


def _username_clean(username: object) -> str:
    if (
        not isinstance(username, str)
        or len(username) < USERNAME_MIN_LENGTH
        or not external_id_valid(username)
    ):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"A username is {USERNAME_MIN_LENGTH} to 64 letters, digits, _ or -.",
            {"field": "username"},
        )
    return username


def app_user_register(*, app: App, username: object, password: object) -> User:
    """A new user of the app who logs in with a username and a password (409 if the username is
    taken in this app, whoever took it)."""
    username = _username_clean(username)
    if not isinstance(password, str) or not password:
        raise ApplicationError(ErrorCode.INVALID, "A password is required.", {"field": "password"})
    user = User(app=app, external_id=username, email=None, display_name=username)
    if len(password) > services.password_max_length():
        raise ApplicationError(ErrorCode.INVALID, "The password is too long.", {"field": "password"})
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise ApplicationError(ErrorCode.INVALID, " ".join(exc.messages), {"field": "password"}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise ApplicationError(ErrorCode.CONFLICT, "This username is taken.", {"field": "username"}) from None
    logger.info("app %s: user %s registered with a password", app.public_id, user.public_id)
    return User.objects.select_related("app").get(pk=user.pk)


def _backoff_key(app: App, username: str) -> str:
    return f"app:{app.public_id}:{username}"


def app_user_login(*, app: App, username: object, password: object) -> tenancy.IssuedHandle:
    """Check a username and password of the app and issue a new id handle for the user.

    An unknown username and a wrong password fail alike (authentication_failed, after the same
    hashing work); repeated failures make the username wait (throttled). Banned, deactivated and
    password-less users (created by the tenant's tokens) cannot log in this way."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, WRONG)
    key = _backoff_key(app, username[:64])
    services.login_backoff_check(key)
    user = (
        User.objects.select_related("app").filter(app=app, external_id=username).first()
        if external_id_valid(username)
        else None
    )
    maximum = services.password_max_length()
    if user is None or len(password) > maximum or not user.has_usable_password():
        make_password(password[:maximum])
        services.login_failed(key)
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, WRONG)
    if not user.check_password(password):
        services.login_failed(key)
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, WRONG)
    services.login_failures_forget(key)
    if not user.can_chat:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, WRONG)
    issued = tenancy.id_handle_issue(app=app, external_id=user.external_id)
    _old_handles_revoke(app, user)
    return issued


def _old_handles_revoke(app: App, user: User) -> None:
    keep = settings.CHAT["APP_LOGIN_HANDLES_MAX"]
    live = IdHandle.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at", "-pk")
    for handle in live[keep:]:
        tenancy.id_handle_revoke(app=app, handle_id=handle.public_id)
