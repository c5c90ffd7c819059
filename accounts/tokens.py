"""JWT issuing and checking, shared by the native API, the ExpressChat endpoints and the sockets.

Both tokens carry `sub` (the user's public id) and `sid` (the LoginSession). Refresh tokens
rotate and the old one is blacklisted (simplejwt); revoking the session (logout, ban) makes every
token of that login useless at once, including live sockets, which the realtime layer closes.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import jwt
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from chatproject.core import rows
from chatproject.core.errors import ApplicationError, ErrorCode

from .models import LoginSession, User


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    sid: str
    access_expires_at: int


@dataclass(frozen=True)
class AccessClaims:
    user_id: str  # public id
    sid: str
    expires_at: int  # unix seconds


def tokens_issue(*, user: User) -> TokenPair:
    """Start a new login session for `user` and return its first token pair."""
    session = LoginSession.objects.create(user=user)
    refresh = RefreshToken.for_user(user)
    refresh["sid"] = session.sid
    access = refresh.access_token
    return TokenPair(str(access), str(refresh), session.sid, int(access["exp"]))


def access_token_for(*, user: User, sid: str) -> tuple[str, int]:
    """A fresh access token for an existing session (the socket refresh path)."""
    access = AccessToken.for_user(user)
    access["sid"] = sid
    return str(access), int(access["exp"])


def access_decode(token: object, *, allow_expired: bool = False) -> AccessClaims:
    """Check an access token's signature and type; optionally accept an expired one.

    Raises ApplicationError(token_expired) for a good but expired token when not allowed, and
    ApplicationError(authentication_failed) for anything else that is wrong.
    """
    if not isinstance(token, str) or not token or len(token) > 4096 or not token.isascii():
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Missing or malformed token.")
    jwt_settings = settings.SIMPLE_JWT
    payload = _hmac_payload(token, jwt_settings["SIGNING_KEY"], jwt_settings["ALGORITHM"])
    if payload is None:  # not one of this server's plain access tokens: PyJWT decides
        try:
            payload = jwt.decode(
                token,
                jwt_settings["SIGNING_KEY"],
                algorithms=[jwt_settings["ALGORITHM"]],
                options={"verify_exp": False, "require": ["exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid token.") from exc
    user_id, sid, exp = payload.get("sub"), payload.get("sid"), payload.get("exp")
    if payload.get("token_type") != "access":
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Not an access token.")
    if not isinstance(user_id, str) or not isinstance(sid, str) or not isinstance(exp, int):
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid token.")
    if not allow_expired and exp <= int(time.time()):
        raise ApplicationError(ErrorCode.TOKEN_EXPIRED, "Token expired.")
    return AccessClaims(user_id=user_id, sid=sid, expires_at=exp)


_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
# The claims simplejwt writes into an access token; a token with any other claim goes to PyJWT.
_PLAIN_CLAIMS = frozenset({"token_type", "exp", "iat", "jti", "sub", "sid"})


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _hmac_payload(token: str, key: str, algorithm: str) -> dict | None:
    """The payload of an access token exactly as this server issues them (header `{"alg",
    "typ": "JWT"}` with the configured HMAC algorithm, simplejwt's claims, `iat` not in the
    future) if its signature is good; None for anything else, which PyJWT then decodes and
    judges. Only ever accepts what PyJWT would: the signature is checked first, in constant
    time, over the segments as they came.

    PyJWT 2.15 costs 58-74 us of CPU per access token (a Python check of every character of
    each segment, the key re-examined as a possible PEM, DER, SSH or JWK key on every call),
    in the event loop of every handshake; this takes ~10."""
    digest = _HMAC_HASHES.get(algorithm)
    if digest is None or token.count(".") != 2:
        return None
    header_b64, payload_b64, signature_b64 = token.split(".")
    if not all(_SEGMENT.fullmatch(part) for part in (header_b64, payload_b64, signature_b64)):
        return None
    try:
        signature = _b64(signature_b64)
        header = json.loads(_b64(header_b64))
        if header != {"alg": algorithm, "typ": "JWT"}:
            return None
        expected = hmac.new(key.encode(), f"{header_b64}.{payload_b64}".encode(), digest).digest()
        if not hmac.compare_digest(signature, expected):
            return None
        payload = json.loads(_b64(payload_b64))
    except ValueError:  # bad base64 or JSON (UnicodeDecodeError and binascii.Error are ValueErrors)
        return None
    if not isinstance(payload, dict) or not payload.keys() <= _PLAIN_CLAIMS:
        return None
    if not isinstance(payload.get("sub"), str) or not isinstance(payload.get("exp"), int):
        return None
    if "jti" in payload and not isinstance(payload["jti"], str):
        return None
    iat = payload.get("iat")
    if iat is not None and (not isinstance(iat, int) or iat > time.time()):
        return None
    return payload


def refresh_decode(token: object) -> tuple[str, str, str]:
    """Check a refresh token (signature, expiry, blacklist). Returns (user_id, sid, jti)."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Missing or malformed token.")
    try:
        refresh = RefreshToken(token)
        refresh.check_blacklist()
    except TokenError as exc:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid refresh token.") from exc
    user_id, sid, jti = refresh.get("sub"), refresh.get("sid"), refresh.get("jti")
    if not isinstance(user_id, str) or not isinstance(sid, str):
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid refresh token.")
    return user_id, sid, jti


def _refresh_unchecked(token: object) -> dict | None:
    """A refresh token's claims if its signature and expiry are good, blacklisted or not
    (simplejwt's RefreshToken checks the blacklist as it decodes)."""
    if not isinstance(token, str) or not token or len(token) > 4096 or not token.isascii():
        return None
    jwt_settings = settings.SIMPLE_JWT
    try:
        claims = jwt.decode(
            token,
            jwt_settings["SIGNING_KEY"],
            algorithms=[jwt_settings["ALGORITHM"]],
            options={"require": ["exp", "sub", "jti"]},
        )
    except jwt.InvalidTokenError:
        return None
    return claims if claims.get("token_type") == "refresh" else None


def refresh_rotated_at(token: object):
    """When a genuine refresh token was blacklisted (rotated or revoked), or None."""
    refresh = _refresh_unchecked(token)
    if refresh is None:
        return None
    return (
        BlacklistedToken.objects.filter(token__jti=refresh.get("jti"))
        .values_list("blacklisted_at", flat=True)
        .first()
    )


def refresh_claims_unchecked(token: object) -> tuple[str, str]:
    """(user_id, sid) of a genuine refresh token, blacklisted or not."""
    refresh = _refresh_unchecked(token)
    if refresh is None:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid refresh token.")
    return str(refresh.get("sub")), str(refresh.get("sid"))


def session_is_live(*, user: User, sid: str) -> bool:
    return LoginSession.objects.filter(user=user, sid=sid, revoked_at__isnull=True).exists()


def user_for_claims(claims: AccessClaims) -> User:
    """The user behind valid claims, if they may still use the service and the session is live.

    One query (the session with its user): every REST request and every socket handshake runs
    this, some twice. Hand-written SQL (chatproject.core.rows): through the ORM it was most of
    a handshake's read-thread CPU (bench/handshake_cost.py)."""
    return user_for_session_row(claims, _session_with_user(claims.sid))


def user_for_session_row(claims: AccessClaims, row: tuple[datetime | None, User] | None) -> User:
    """`user_for_claims`' checks of the session's row (`session_with_user_row`), however it was
    read: on a database thread, or on the event loop (gateway/reader.py)."""
    if row is None:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Unknown user or session.")
    session_revoked_at, user = row
    if user.public_id != claims.user_id:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Unknown user or session.")
    if user.is_banned:
        raise ApplicationError(ErrorCode.BANNED, "This account is banned.")
    if not user.is_active or not user.email_verified:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Account not usable.")
    if session_revoked_at is not None:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Session revoked.")
    return user


@cache
def _session_with_user_sql(vendor: str) -> str:
    session, user = LoginSession._meta, User._meta
    return (
        f"SELECT {rows.q(connection, 's', session.get_field('revoked_at').column)}, "
        f"{rows.columns(connection, 'u', rows.concrete_fields(User))} "
        f"FROM {rows.table(connection, LoginSession)} s "
        f"JOIN {rows.table(connection, User)} u "
        f"ON {rows.q(connection, 'u', user.pk.column)} = {rows.q(connection, 's', session.get_field('user').column)} "
        f"WHERE {rows.q(connection, 's', session.get_field('sid').column)} = %s"
    )


def session_with_user_sql() -> str:
    """The statement of `user_for_claims`' read (one `%s`: the session id), for a driver of
    its own (gateway/reader.py); its row goes to `session_with_user_row`."""
    return _session_with_user_sql(connection.vendor)


def session_with_user_row(row: Sequence[Any] | None) -> tuple[datetime | None, User] | None:
    """(the session's revoked_at, its user) from a row of `session_with_user_sql`, or None."""
    if row is None:
        return None
    revoked_at = rows.converted(connection, (LoginSession._meta.get_field("revoked_at"),), row[:1])[0]
    return revoked_at, rows.instance(connection, User, row[1:])


def _session_with_user(sid: str) -> tuple[datetime | None, User] | None:
    """(the session's revoked_at, its user) for a session id, or None."""
    with connection.cursor() as cursor:
        cursor.execute(_session_with_user_sql(connection.vendor), [sid])
        row = cursor.fetchone()
    return session_with_user_row(row)


def refresh_blacklist(token: str) -> None:
    """Blacklist one refresh token (idempotent); unknown or invalid tokens are ignored."""
    try:
        refresh = RefreshToken(token, verify=False)
    except TokenError:
        return
    jti = refresh.get("jti")
    outstanding = OutstandingToken.objects.filter(jti=jti).first()
    if outstanding is not None:
        BlacklistedToken.objects.get_or_create(token=outstanding)


def refresh_rotate(*, jti: str, user: User, sid: str) -> TokenPair:
    """Blacklist the refresh token `jti` and return a new pair for the same session `sid`.

    The blacklist row is the lock: of several concurrent rotations of one token exactly one
    inserts it and wins; the others get authentication_failed, as a replayed token should.
    """
    outstanding = OutstandingToken.objects.filter(jti=jti).first()
    if outstanding is None:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid refresh token.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                BlacklistedToken.objects.create(token=outstanding)
        except IntegrityError as exc:
            raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Invalid refresh token.") from exc
        refresh = RefreshToken.for_user(user)
        refresh["sid"] = sid
        access = refresh.access_token
    return TokenPair(str(access), str(refresh), sid, int(access["exp"]))


def refresh_blacklist_all(*, user: User) -> int:
    """Blacklist every unexpired refresh token of `user` (ban, deactivation). Returns the count."""
    live = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(
        blacklistedtoken__isnull=False
    )
    rows = [BlacklistedToken(token=token) for token in live]
    BlacklistedToken.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
