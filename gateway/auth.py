"""Handshake authentication, for every protocol that takes the product's own tokens.

Credentials are taken, in this order, from:
1. the Socket.IO `auth` payload `{"token": <access>}` (native clients);
2. an `Authorization: Bearer <access>` header;
3. query parameters `accessToken` + `refreshToken` (ExpressChat mobile app);
4. cookies `access_token` (+ `refresh_token`) (ExpressChat browser client).

Native credentials must hold a valid, unexpired access token. The ExpressChat ways keep that
protocol's refresh path: an access token with a good signature but past its expiry, plus a valid
refresh token *of the same user and the same login session*, yields a new access token that the
server pushes to the client as `access-token`.
"""

import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

from accounts.models import User
from accounts.tokens import AccessClaims, access_decode, access_token_for, refresh_decode, user_for_claims
from chatproject.core.errors import ApplicationError, ErrorCode
from messaging.models import Conversation
from messaging.selectors import ConversationSnapshot, conversation_snapshot_for_user

from .transports.handshake import Handshake


@dataclass(frozen=True)
class Credentials:
    access: str | None
    refresh: str | None
    renewable: bool  # the ExpressChat ways: may use the refresh token at the handshake


@dataclass(frozen=True)
class Authenticated:
    user: User
    session_id: str
    expires_at: int
    refresh_token: str | None
    new_access: str | None  # set when the access token was renewed at the handshake


def _cookies(header: str) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def first_party_credentials(handshake: Handshake) -> Credentials:
    """Pick the product's own credentials a client presented, in the order above."""
    auth, headers = handshake.auth, handshake.headers
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return Credentials(auth["token"], None, renewable=False)
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return Credentials(authorization[7:].strip(), None, renewable=False)
    access, refresh = handshake.query.get("accessToken"), handshake.query.get("refreshToken")
    if access and refresh:
        return Credentials(access, refresh, renewable=True)
    cookies = _cookies(headers.get("cookie", ""))
    return Credentials(cookies.get("access_token"), cookies.get("refresh_token"), renewable=True)


def connection_authenticate(*, credentials: Credentials) -> Authenticated:
    """Resolve credentials to a user allowed to chat, or raise ApplicationError."""
    if not credentials.access:
        raise ApplicationError(ErrorCode.NOT_AUTHENTICATED, "Access token not found.")
    claims = access_decode(credentials.access, allow_expired=credentials.renewable)
    if not credentials.renewable or claims.expires_at > _now():
        user = user_for_claims(claims)
        return Authenticated(user, claims.sid, claims.expires_at, credentials.refresh, None)
    return _renew(claims, credentials.refresh)


def _renew(claims: AccessClaims, refresh: str | None) -> Authenticated:
    if not refresh:
        raise ApplicationError(ErrorCode.TOKEN_EXPIRED, "Access token expired and no refresh token.")
    user_id, sid, _jti = refresh_decode(refresh)
    if user_id != claims.user_id or sid != claims.sid:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Tokens do not belong together.")
    user = user_for_claims(claims)
    access, expires_at = access_token_for(user=user, sid=sid)
    return Authenticated(user, sid, expires_at, refresh, access)


def connection_renew(*, user: User, session_id: str, refresh: str | None) -> tuple[str, int]:
    """At an access token's expiry on a live socket: a new access token if the connection holds
    a refresh token of the same live session and the user may still chat; else raise."""
    if not refresh:
        raise ApplicationError(ErrorCode.TOKEN_EXPIRED, "Token expired.")
    user_id, sid, _jti = refresh_decode(refresh)
    if user_id != user.public_id or sid != session_id:
        raise ApplicationError(ErrorCode.AUTHENTICATION_FAILED, "Tokens do not belong together.")
    return access_token_for(user=session_check(user=user, session_id=sid), sid=sid)


def session_check(*, user: User, session_id: str) -> User:
    """Raise unless the user may still chat and the login session is live."""
    return user_for_claims(AccessClaims(user_id=user.public_id, sid=session_id, expires_at=0))


def connection_snapshot(*, user: User, session_id: str) -> ConversationSnapshot:
    """Called once the connection is subscribed to the bus: the session is still live (a logout
    or ban that commits from now on reaches the connection through the bus), and what the
    connection needs of the user's conversations. One worker-thread call, three queries: the
    handshake is what a reconnect storm repeats thousands of times."""
    session_check(user=user, session_id=session_id)
    kinds = (Conversation.Kind.DIRECT, Conversation.Kind.GROUP)
    return conversation_snapshot_for_user(user=user, kinds=kinds)


def _now() -> int:
    return int(time.time())


def query_dict(query_string: str) -> dict[str, str]:
    """A request's query string as a dict: the first value of each key, from the first 64
    pairs of its first 8 KiB (a handshake's query is small; a huge one is not parsed whole)."""
    found: dict[str, str] = {}
    for key, value in parse_qsl(query_string[:8192], keep_blank_values=True)[:64]:
        found.setdefault(key, value)
    return found
