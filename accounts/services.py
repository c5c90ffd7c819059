"""Use cases of the accounts app: sign-up, email verification, login, refresh, logout, bans.

Every transport (the native API under /api/, the ExpressChat endpoints at the root, the admin,
the sockets) calls these functions; there is no second write path. Events leave only through
`publish_on_commit`, mails only after the transaction commits.
"""

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode

from . import selectors
from .events import session_revoked, user_settings_changed
from .models import EmailVerification, LoginSession, User
from .signals import user_verified
from .tokens import (
    TokenPair,
    access_decode,
    refresh_blacklist,
    refresh_blacklist_all,
    refresh_claims_unchecked,
    refresh_decode,
    refresh_rotate,
    refresh_rotated_at,
    session_is_live,
    tokens_issue,
    user_for_claims,
)

logger = logging.getLogger(__name__)

EMAIL_MAX_LENGTH = 254
# Django's validators bound the minimum only; a bound on the maximum keeps hashing cheap.
PASSWORD_MAX_LENGTH_DEFAULT = 128
CODE_LENGTH = 6


def password_max_length() -> int:
    return int(settings.CHAT.get("MAX_PASSWORD_LENGTH", PASSWORD_MAX_LENGTH_DEFAULT))


@dataclass(frozen=True)
class VerificationSent:
    user: User
    expires_at: datetime
    resent: bool  # True when the address already had an unverified account (or a code)


@dataclass(frozen=True)
class Login:
    user: User
    tokens: TokenPair


# --- input checks --------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, {"fields": {field: [message]}})


def _email_clean(email: str) -> str:
    email = User.objects.normalize_email(email)
    if len(email) > EMAIL_MAX_LENGTH:
        raise _invalid("email", "Enter a valid email address.")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise _invalid("email", "Enter a valid email address.") from exc
    return email


def _display_name_clean(display_name: str) -> str:
    display_name = " ".join(display_name.split())
    if not display_name:
        raise _invalid("display_name", "A display name is required.")
    if len(display_name) > settings.CHAT["MAX_NAME_LENGTH"]:
        raise _invalid("display_name", "The display name is too long.")
    return display_name


def _password_check(password: str, *, user: User) -> None:
    if len(password) > password_max_length():
        raise _invalid("password", "The password is too long.")
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        message = " ".join(exc.messages)
        raise ApplicationError(ErrorCode.INVALID, message, {"fields": {"password": exc.messages}}) from exc


def _user_usable_check(user: User) -> None:
    if user.is_banned:
        raise ApplicationError(ErrorCode.BANNED, "This account is suspended.")
    if not user.is_active:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "This account is deactivated.")


# --- verification codes --------------------------------------------------------------------


def _code_new() -> str:
    return str(100000 + secrets.randbelow(900000))


def _code_hash(*, user: User, code: str) -> str:
    # Keyed with SECRET_KEY and bound to the user, so a leaked table yields no usable codes.
    message = f"accounts.email-verification:{user.public_id}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _cooldown_check(verification: EmailVerification | None, *, now: datetime) -> None:
    if verification is None:
        return
    cooldown = timedelta(seconds=settings.CHAT["VERIFICATION_RESEND_COOLDOWN_SECONDS"])
    available_at = verification.sent_at + cooldown
    if now < available_at:
        wait = max(1, int((available_at - now).total_seconds() + 0.999))
        raise ApplicationError(
            ErrorCode.COOLDOWN, "Please wait before asking for another code.", {"retry_after": wait}
        )


def verification_link(*, email: str, code: str) -> str:
    """The link in the mail: this server's own /verify, email URL-encoded (a + stays a +)."""
    return f"{settings.PUBLIC_BASE_URL}/verify?{urlencode({'email': email, 'token': code})}"


def _verification_mail_send(*, user_id: str, email: str, display_name: str, code: str) -> None:
    context = {
        "display_name": display_name,
        "code": code,
        "link": verification_link(email=email, code=code),
        "ttl_minutes": settings.CHAT["VERIFICATION_CODE_TTL_SECONDS"] // 60,
    }
    send_mail(
        subject="Your verification code",
        message=render_to_string("accounts/verification_email.txt", context),
        from_email=None,
        recipient_list=[email],
        html_message=render_to_string("accounts/verification_email.html", context),
    )
    logger.info("verification mail sent to user %s", user_id)


def _verification_issue(
    *, user: User, now: datetime, pending_password: str, pending_display_name: str
) -> EmailVerification:
    """Replace the user's code with a fresh one and mail it once the transaction commits."""
    code = _code_new()
    ttl = timedelta(seconds=settings.CHAT["VERIFICATION_CODE_TTL_SECONDS"])
    verification, _ = EmailVerification.objects.update_or_create(
        user=user,
        defaults={
            "code_hash": _code_hash(user=user, code=code),
            "pending_password": pending_password,
            "pending_display_name": pending_display_name,
            "expires_at": now + ttl,
            "attempts": 0,
            "sent_at": now,
        },
    )
    mail = {
        "user_id": user.public_id,
        "email": user.email,
        "display_name": pending_display_name or user.display_name,
        "code": code,
    }

    def send() -> None:  # a named function: Django logs a robust callback's failure by its name
        _verification_mail_send(**mail)

    # robust: a mail server failure is logged and must not turn a committed sign-up into a 500.
    transaction.on_commit(send, robust=True)
    return verification


# --- sign-up and verification --------------------------------------------------------------


def user_register(*, email: str, password: str, display_name: str) -> VerificationSent:
    """Sign up: create an unverified account (or renew the code of an unverified one) and mail
    a verification code and link.

    Over an existing unverified account the stored password is left alone: the new password
    waits next to the new code, so whoever owns the mailbox decides which password wins by
    using the code. The resend cooldown applies here too (no mail bombing through sign-up).
    Raises email_taken when a verified account has the address.
    """
    email = _email_clean(email)
    display_name = _display_name_clean(display_name)
    _password_check(password, user=User(email=email, display_name=display_name))
    password_hash = make_password(password)  # slow on purpose: outside the transaction
    now = timezone.now()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email=email).first()
        resent = user is not None
        if user is None:
            try:
                with transaction.atomic():
                    user = User.objects.create(email=email, display_name=display_name, password=password_hash)
            except IntegrityError as exc:
                # A parallel sign-up for the same address won the insert a moment ago.
                raise ApplicationError(
                    ErrorCode.COOLDOWN, "Please wait before asking for another code.", {"retry_after": 1}
                ) from exc
        else:
            if user.email_verified:
                raise ApplicationError(ErrorCode.EMAIL_TAKEN, "An account with this email already exists.")
            _user_usable_check(user)
            _cooldown_check(EmailVerification.objects.select_for_update().filter(user=user).first(), now=now)
        verification = _verification_issue(
            user=user, now=now, pending_password=password_hash, pending_display_name=display_name
        )
    logger.info("sign-up for user %s (resent=%s)", user.public_id, resent)
    return VerificationSent(user=user, expires_at=verification.expires_at, resent=resent)


def verification_resend(*, email: str) -> VerificationSent:
    """Mail a fresh code to an unverified account; the old code dies. Keeps the pending
    password and name of the last sign-up. Subject to the resend cooldown."""
    email = User.objects.normalize_email(email)
    now = timezone.now()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email=email).first()
        if user is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No account with this email.")
        if user.email_verified:
            raise ApplicationError(ErrorCode.ALREADY_VERIFIED, "This email is already verified.")
        _user_usable_check(user)
        previous = EmailVerification.objects.select_for_update().filter(user=user).first()
        _cooldown_check(previous, now=now)
        verification = _verification_issue(
            user=user,
            now=now,
            pending_password=previous.pending_password if previous else "",
            pending_display_name=previous.pending_display_name if previous else "",
        )
    logger.info("verification code resent for user %s", user.public_id)
    return VerificationSent(user=user, expires_at=verification.expires_at, resent=True)


def user_verify_email(*, email: str, code: str) -> Login:
    """Check a verification code; on success mark the email verified, apply the password and
    name sent with that code, create the notes-to-self conversation and start a login session.

    Codes expire, are single-use, and die after VERIFICATION_MAX_ATTEMPTS tries. Every failure
    that could help a guesser (unknown email, verified account, no code) looks the same.
    """
    email = User.objects.normalize_email(email)
    user = selectors.user_get_by_email(email=email)
    verification = EmailVerification.objects.filter(user=user).first() if user is not None else None
    if user is None or user.email_verified or verification is None:
        raise ApplicationError(ErrorCode.CODE_INVALID, "Invalid or expired code.")
    if verification.expires_at <= timezone.now():
        raise ApplicationError(ErrorCode.CODE_EXPIRED, "This code has expired; ask for a new one.")
    max_attempts = settings.CHAT["VERIFICATION_MAX_ATTEMPTS"]
    # Claim an attempt before comparing, in one UPDATE, so parallel guesses cannot exceed the
    # limit. It runs in autocommit and stays counted when this call raises below.
    claimed = EmailVerification.objects.filter(
        pk=verification.pk, code_hash=verification.code_hash, attempts__lt=max_attempts
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        raise ApplicationError(ErrorCode.TOO_MANY_ATTEMPTS, "Too many wrong codes; ask for a new one.")
    well_formed = isinstance(code, str) and len(code) == CODE_LENGTH and code.isascii() and code.isdigit()
    if not well_formed or not hmac.compare_digest(verification.code_hash, _code_hash(user=user, code=code)):
        attempts_left = max(0, max_attempts - verification.attempts - 1)
        raise ApplicationError(
            ErrorCode.CODE_INVALID, "Invalid or expired code.", {"attempts_left": attempts_left}
        )
    _user_usable_check(user)
    with transaction.atomic():
        # The row disappears on first use: a second, parallel use of the same code finds nothing.
        verification = (
            EmailVerification.objects.select_for_update()
            .filter(pk=verification.pk, code_hash=verification.code_hash)
            .first()
        )
        if verification is None:
            raise ApplicationError(ErrorCode.CODE_INVALID, "Invalid or expired code.")
        user = _email_verified_mark(user=user, verification=verification)
        tokens = tokens_issue(user=user)
    logger.info("email verified for user %s", user.public_id)
    return Login(user=user, tokens=tokens)


def _email_verified_mark(*, user: User, verification: EmailVerification | None) -> User:
    user = User.objects.select_for_update().get(pk=user.pk)
    user.email_verified = True
    fields = ["email_verified", "updated_at"]
    if verification is not None:
        if verification.pending_password:
            user.password = verification.pending_password
            fields.append("password")
        if verification.pending_display_name:
            user.display_name = verification.pending_display_name
            fields.append("display_name")
        verification.delete()
    user.save(update_fields=fields)
    # Messaging creates the notes-to-self conversation here (its receiver, in this transaction).
    user_verified.send(sender=User, user=user)
    return user


# --- login, refresh, logout ----------------------------------------------------------------


def _password_matches(*, user: User, password: str) -> bool:
    if user.check_password(password):
        return True
    # An unverified account also accepts the password waiting with its current code, so the
    # person who just signed up again learns "not verified" rather than "wrong password".
    if user.email_verified:
        return False
    pending = EmailVerification.objects.filter(user=user).values_list("pending_password", flat=True).first()
    return bool(pending) and check_password(password, pending)


def _login_key(email: str, part: str) -> str:
    digest = hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"login:{part}:{digest}"


def login_backoff_check(email: str) -> None:
    """Refuse a login for an address that is waiting out its backoff, before any password is
    looked at. Per address, known or not (unknown addresses back off alike: nothing tells them
    apart), in the shared cache, so every process and every client address counts."""
    until = cache.get(_login_key(email, "until"))
    wait = int(until - time.time()) + 1 if until else 0
    if wait > 0:
        raise ApplicationError(
            ErrorCode.THROTTLED,
            "Too many failed logins for this account; try again later.",
            {"retry_after": wait},
        )


def login_failed(email: str) -> None:
    """Count a failed login. From the LOGIN_FAILURES_FREE-th on, each failure makes the address
    wait twice as long as the one before (1 s, 2 s, 4 s, ... up to LOGIN_BACKOFF_MAX_SECONDS);
    the count is forgotten LOGIN_FAILURE_WINDOW_SECONDS after the last failure, or at the next
    successful login."""
    chat = settings.CHAT
    window = chat["LOGIN_FAILURE_WINDOW_SECONDS"]
    key = _login_key(email, "failures")
    cache.add(key, 0, window)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        failures = 1
    cache.touch(key, window)
    over = failures - chat["LOGIN_FAILURES_FREE"]
    if over >= 0:
        wait = min(2**over, chat["LOGIN_BACKOFF_MAX_SECONDS"])
        cache.set(_login_key(email, "until"), time.time() + wait, wait + 1)


def login_failures_forget(email: str) -> None:
    """A successful login: the address starts again with its free failures."""
    cache.delete_many([_login_key(email, "failures"), _login_key(email, "until")])


def user_authenticate(*, email: str, password: str) -> Login:
    """Log in with email and password and start a login session.

    An unknown email and a wrong password fail alike (authentication_failed, after the same
    hashing work). Only after a correct password: banned, deactivated, not verified. Repeated
    failures for one address make it wait (throttled, with `retry_after`), whoever tries.
    """
    email = User.objects.normalize_email(email)
    login_backoff_check(email)
    user = selectors.user_get_by_email(email=email) if len(email) <= EMAIL_MAX_LENGTH else None
    if user is None or len(password) > password_max_length():
        make_password(password[: password_max_length()])
        login_failed(email)
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Incorrect email or password.")
    if not _password_matches(user=user, password=password):
        login_failed(email)
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Incorrect email or password.")
    login_failures_forget(email)
    _user_usable_check(user)
    if not user.email_verified:
        raise ApplicationError(ErrorCode.EMAIL_NOT_VERIFIED, "The email address is not verified yet.")
    tokens = tokens_issue(user=user)
    logger.info("login of user %s, session %s", user.public_id, tokens.sid)
    return Login(user=user, tokens=tokens)


def session_refresh(*, refresh_token: str) -> TokenPair:
    """Rotate a refresh token: the old one is blacklisted, the new pair keeps the session id.
    Refused for revoked sessions and for banned, deactivated or unknown users.

    A refresh token that was already rotated and comes back later than REFRESH_REUSE_GRACE
    seconds after its rotation was copied (refresh-token reuse detection, OAuth 2.1): its whole
    login session is revoked, so the copy and the session's current tokens die together.
    """
    try:
        user_id, sid, jti = refresh_decode(refresh_token)
    except ApplicationError:
        _refresh_reuse_revoke(refresh_token)
        raise
    user = selectors.user_get_by_public_id(public_id=user_id)
    if user is None or not user.email_verified:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid refresh token.")
    _user_usable_check(user)
    if not session_is_live(user=user, sid=sid):
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Session revoked.")
    return refresh_rotate(jti=jti, user=user, sid=sid)


# Two tabs refreshing at the same moment present the same token: the slower one is refused but
# is no theft. A rotated token presented later than this is.
REFRESH_REUSE_GRACE_SECONDS = 30


def _refresh_reuse_revoke(refresh_token: str) -> None:
    """If `refresh_token` is genuine but was rotated more than the grace period ago, end its
    login session (and close the session's sockets)."""
    rotated = refresh_rotated_at(refresh_token)
    if rotated is None or timezone.now() - rotated < timedelta(seconds=REFRESH_REUSE_GRACE_SECONDS):
        return
    user_id, sid = refresh_claims_unchecked(refresh_token)
    owner = selectors.user_get_by_public_id(public_id=user_id)
    if owner is None:
        return
    with transaction.atomic():
        ended = LoginSession.objects.filter(user=owner, sid=sid, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if ended:
            publish_on_commit(
                session_revoked(user_id=owner.public_id, sid=sid, reason="revoked"),
                user_ids=[owner.public_id],
            )
    if ended:
        logger.warning("refresh token reused: session %s of user %s revoked", sid, owner.public_id)


def session_access_token_check(*, access_token: str, refresh_token: str | None) -> User:
    """The ExpressChat cookie update: accept `access_token` only if it is a valid, unexpired
    access token of a live session whose user also owns the (valid) refresh token."""
    refresh_user_id, _, _ = refresh_decode(refresh_token)
    claims = access_decode(access_token)
    if claims.user_id != refresh_user_id:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Tokens of different users.")
    return user_for_claims(claims)


def user_logout(
    *, refresh_token: str | None = None, access_token: str | None = None, user: User | None = None
) -> bool:
    """End the login session a token belongs to: revoke it, blacklist the refresh token and
    tell the realtime layer to close the session's sockets.

    The session is found from the refresh token, or else from a correctly signed access token
    (expired is fine: it only ever ends a session). With `user`, the token must be theirs.
    Returns whether a live session was ended.
    """
    owner_id = sid = None
    refresh_ok = False
    if refresh_token is not None:
        try:
            owner_id, sid, _ = refresh_decode(refresh_token)
            refresh_ok = True
        except ApplicationError:
            if access_token is None:
                raise
    if sid is None:
        claims = access_decode(access_token, allow_expired=True)
        owner_id, sid = claims.user_id, claims.sid
    if user is not None and user.public_id != owner_id:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "This token belongs to another account.")
    owner = user or selectors.user_get_by_public_id(public_id=owner_id)
    if owner is None:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Unknown user.")
    with transaction.atomic():
        ended = LoginSession.objects.filter(user=owner, sid=sid, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if refresh_ok:
            refresh_blacklist(refresh_token)
        if ended:
            publish_on_commit(
                session_revoked(user_id=owner.public_id, sid=sid, reason="revoked"),
                user_ids=[owner.public_id],
            )
    logger.info("logout of user %s, session %s (ended=%s)", owner.public_id, sid, bool(ended))
    return bool(ended)


# --- moderation ----------------------------------------------------------------------------


def _staff_check(*, by: User | None, user: User) -> None:
    """`by` None means a trusted internal caller (a management command, a test)."""
    if by is None:
        return
    if not (by.is_active and by.is_staff):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only staff can do this.")
    if by.pk == user.pk:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "You cannot do this to your own account.")
    if user.is_superuser and not by.is_superuser:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only a superuser can do this to a superuser.")


def _sessions_end_all(*, user: User, reason: str) -> int:
    """Revoke every live session of `user`, blacklist their refresh tokens, cut their sockets."""
    ended = LoginSession.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    refresh_blacklist_all(user=user)
    publish_on_commit(
        session_revoked(user_id=user.public_id, sid=None, reason=reason), user_ids=[user.public_id]
    )
    return ended


def user_logout_everywhere(*, user: User) -> int:
    """End every login session of the caller (all devices): their refresh tokens stop working
    and every live socket of theirs is closed, on every process. Returns how many ended."""
    with transaction.atomic():
        ended = _sessions_end_all(user=user, reason="revoked")
    logger.info("logout everywhere of user %s: %d sessions ended", user.public_id, ended)
    return ended


def user_ban(*, user: User, by: User | None, reason: str = "") -> User:
    """Ban a user: no login, no refresh, every session revoked and live sockets closed."""
    _staff_check(by=by, user=user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.is_banned = True
        user.banned_at = timezone.now()
        user.ban_reason = reason[: User._meta.get_field("ban_reason").max_length]
        user.save(update_fields=["is_banned", "banned_at", "ban_reason", "updated_at"])
        ended = _sessions_end_all(user=user, reason="banned")
    logger.info(
        "user %s banned by %s, %d sessions ended", user.public_id, by.public_id if by else None, ended
    )
    return user


def user_unban(*, user: User, by: User | None) -> User:
    """Lift a ban. Old sessions stay revoked: the user logs in again."""
    _staff_check(by=by, user=user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.is_banned = False
        user.banned_at = None
        user.ban_reason = ""
        user.save(update_fields=["is_banned", "banned_at", "ban_reason", "updated_at"])
    logger.info("user %s unbanned by %s", user.public_id, by.public_id if by else None)
    return user


def user_deactivate(*, user: User, by: User | None) -> User:
    """Deactivate an account: like a ban for sessions and sockets, without the ban record."""
    _staff_check(by=by, user=user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.is_active = False
        user.save(update_fields=["is_active", "updated_at"])
        ended = _sessions_end_all(user=user, reason="deactivated")
    logger.info(
        "user %s deactivated by %s, %d sessions ended", user.public_id, by.public_id if by else None, ended
    )
    return user


def user_activate(*, user: User, by: User | None) -> User:
    """Reactivate a deactivated account."""
    _staff_check(by=by, user=user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.is_active = True
        user.save(update_fields=["is_active", "updated_at"])
    logger.info("user %s activated by %s", user.public_id, by.public_id if by else None)
    return user


def user_mark_verified(*, user: User, by: User | None) -> User:
    """Staff override: mark the email verified without a code. The password stays the one set
    at the first sign-up; any pending code is dropped."""
    _staff_check(by=by, user=user)
    with transaction.atomic():
        if User.objects.filter(pk=user.pk, email_verified=True).exists():
            return user
        verification = EmailVerification.objects.select_for_update().filter(user=user).first()
        if verification is not None:
            verification.delete()
        user = _email_verified_mark(user=user, verification=None)
    logger.info("user %s verified by %s", user.public_id, by.public_id if by else None)
    return user


# --- search --------------------------------------------------------------------------------


def user_search(*, user: User, query: str, limit: int | None = None) -> list[User]:
    """Find users by plain text: a case-insensitive substring of the display name, or the exact
    email. Only verified, active, unbanned users; at most CHAT SEARCH_MAX_RESULTS (or `limit`).
    Whether emails may be shown is `selectors.user_email_visible`'s call, not this one's."""
    return selectors.user_search(viewer=user, query=query, limit=limit)


# --- privacy settings and last seen ------------------------------------------------------------

LAST_SEEN_BATCH = 500


def user_settings_update(
    *, user: User, presence_hidden: bool | None = None, read_receipts_enabled: bool | None = None
) -> User:
    """Change the user's privacy settings; fields left as None stay as they are.

    `presence_hidden`: others see the user as offline, without a last-seen time.
    `read_receipts_enabled` off: the user's read and delivered receipts reach nobody (their own
    read pointer still moves, so unread counts stay right) and they see nobody's.
    Publishes `user.settings_changed` to the user's own connections on commit, so every process
    applies the change to them at once.
    """
    changes = {
        name: value
        for name, value in (
            ("presence_hidden", presence_hidden),
            ("read_receipts_enabled", read_receipts_enabled),
        )
        if value is not None
    }
    for name, value in changes.items():
        if not isinstance(value, bool):
            raise _invalid(name, "Must be true or false.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        for name, value in changes.items():
            setattr(user, name, value)
        if changes:
            user.save(update_fields=[*changes, "updated_at"])
            publish_on_commit(
                user_settings_changed(
                    user_id=user.public_id,
                    presence_hidden=user.presence_hidden,
                    read_receipts_enabled=user.read_receipts_enabled,
                ),
                user_ids=[user.public_id],
            )
    return user


def user_last_seen_record(*, user_ids: list[str], at: datetime) -> int:
    """Record that these users were connected at `at` (only ever moves forward).

    Called by the presence tracker when a user's last connection on a process ends, every few
    minutes for connected users, and for the users of a process that died; never per event.
    """
    updated = 0
    for start in range(0, len(user_ids), LAST_SEEN_BATCH):
        batch = user_ids[start : start + LAST_SEEN_BATCH]
        updated += (
            User.objects.filter(public_id__in=batch)
            .filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=at))
            .update(last_seen_at=at)
        )
    return updated
