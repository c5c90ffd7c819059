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

Mounts of the apps realm (docs/tenants.md) take the same places for a tenant token (`auth.token`
first), an id handle in `auth.handle`, and a claimed id in `auth.user_id` or the query
`user_id`; accounts.identity resolves them under the mount's policy, and an app's verification
URL is then called off the database thread (`authenticate`).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

from django.conf import settings

from accounts.identity import (
    FIRST_PARTY,
    Policy,
    Presented,
    Verification,
    identity_check,
    identity_resolve,
)
from accounts.models import User
from accounts.tokens import AccessClaims, access_decode, access_token_for, refresh_decode, user_for_claims
from accounts.verification import verification_check
from chatproject.core.errors import ApplicationError, ErrorCode
from messaging.models import Conversation
from messaging.selectors import ConversationSnapshot, conversation_snapshot_for_user

from . import reader
from .sync import call, call_outside, call_read
from .transports.handshake import Handshake

FIRST_PARTY_POLICY = Policy()
# The conversations a greeting lists and a connection subscribes to.
GREETING_KINDS = (Conversation.Kind.DIRECT, Conversation.Kind.GROUP)


@dataclass(frozen=True)
class Credentials:
    access: str | None
    refresh: str | None
    renewable: bool  # the ExpressChat ways: may use the refresh token at the handshake
    handle: str | None = None  # an id handle (apps realm)
    claimed_id: str | None = None  # the user id the client says it is: must be the resolved one


@dataclass(frozen=True)
class Authenticated:
    user: User
    session_id: str
    expires_at: int
    refresh_token: str | None
    new_access: str | None  # set when the access token was renewed at the handshake
    realm: str | None = None  # the app's public id; None: first-party
    verification: Verification | None = None  # due before the connection is admitted
    # What the greeting needs, read by the same call that checked the session (`authenticate`
    # with `before_read`); None: the hub reads it once subscribed.
    snapshot: ConversationSnapshot | None = None


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
    claimed = _claimed_id(handshake)
    handle = auth.get("handle") if isinstance(auth, dict) and isinstance(auth.get("handle"), str) else None
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return Credentials(auth["token"], None, renewable=False, handle=handle, claimed_id=claimed)
    if handle is not None:
        return Credentials(None, None, renewable=False, handle=handle, claimed_id=claimed)
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return Credentials(authorization[7:].strip(), None, renewable=False)
    access, refresh = handshake.query.get("accessToken"), handshake.query.get("refreshToken")
    if access and refresh:
        return Credentials(access, refresh, renewable=True)
    cookies = _cookies(headers.get("cookie", ""))
    return Credentials(cookies.get("access_token"), cookies.get("refresh_token"), renewable=True)


def _claimed_id(handshake: Handshake) -> str | None:
    auth = handshake.auth if isinstance(handshake.auth, dict) else {}
    claimed = auth.get("user_id", handshake.query.get("user_id"))
    return claimed if claimed is None or isinstance(claimed, str) else repr(claimed)[:64]


async def authenticate(
    *,
    credentials: Credentials,
    policy: Policy,
    before_read: Callable[[str], Awaitable[None]] | None = None,
) -> Authenticated:
    """Resolve a handshake's credentials under a mount's policy (database thread), then call the
    app's verification URL if one is due (a thread of its own, never the database thread),
    bounded by CHAT TENANT_VERIFY_TIMEOUT_SECONDS however slowly the URL trickles an answer.

    `before_read` (first-party mounts only): the user is known from the token's verified claims
    before anything is read, so it is awaited with the user's public id first (the hub subscribes
    to the user's bus group there), and one read-thread call then checks the session and reads
    the greeting's snapshot (`Authenticated.snapshot`): one thread handoff and one session query
    per handshake instead of two of each. On PostgreSQL that read runs on the event loop
    instead, in one round trip (gateway/reader.py, CHAT HANDSHAKE_READ_ON_LOOP), unless the
    access token has expired and the ExpressChat refresh path renews it (a read thread)."""
    if before_read is not None and policy.realm == FIRST_PARTY:
        claims = _claims(credentials)  # signature and expiry: CPU only (39-43 us measured)
        await before_read(claims.user_id)
        if _live(credentials, claims) and reader.usable():  # on the event loop, one round trip
            user, snapshot = await reader.connection_open(claims=claims, kinds=GREETING_KINDS)
            authed = Authenticated(user, claims.sid, claims.expires_at, credentials.refresh, None)
            return replace(_claimed_check(credentials, authed), snapshot=snapshot)
        return await call_read(connection_open, credentials=credentials, claims=claims)
    # First-party credentials are only read (a token, its session, its user); an app's may
    # create the user on first sight, so they go through the database thread.
    run = call_read if policy.realm == FIRST_PARTY else call
    authed = await run(connection_authenticate, credentials=credentials, policy=policy)
    if authed.verification is not None:
        timeout = settings.CHAT["TENANT_VERIFY_TIMEOUT_SECONDS"]
        try:
            await asyncio.wait_for(call_outside(verification_check, authed.verification), timeout + 0.5)
        except TimeoutError:
            raise ApplicationError(
                ErrorCode.AUTHENTICATION_FAILED,
                f"The app's verification URL did not answer within {timeout:g} s.",
            ) from None
    return authed


def connection_authenticate(
    *, credentials: Credentials, policy: Policy = FIRST_PARTY_POLICY
) -> Authenticated:
    """Resolve credentials to a user allowed to chat, or raise ApplicationError. Mounts of the
    first-party realm that take only access tokens keep the ExpressChat refresh path."""
    if policy.realm != FIRST_PARTY:
        presented = Presented(
            token=credentials.access, handle=credentials.handle, claimed_id=credentials.claimed_id
        )
        identity = identity_resolve(policy=policy, presented=presented)
        return Authenticated(
            identity.user,
            identity.session_id,
            identity.expires_at,
            None,  # tenant tokens are not renewed on a live connection: the client reconnects
            None,
            identity.realm,
            identity.verification,
        )
    return _claimed_check(credentials, _first_party(credentials))


def connection_open(*, credentials: Credentials, claims: AccessClaims) -> Authenticated:
    """A first-party handshake's one read, once the connection's process is subscribed to the
    user's bus group: the session with its user (or the refresh path), then what the greeting
    needs of the user's conversations (`connection_snapshot` without a second session check:
    a logout or ban that commits from the subscription on reaches the hub through the bus)."""
    authed = _claimed_check(credentials, _first_party(credentials, claims))
    snapshot = conversation_snapshot_for_user(user=authed.user, kinds=GREETING_KINDS)
    return replace(authed, snapshot=snapshot)


def _claimed_check(credentials: Credentials, authed: Authenticated) -> Authenticated:
    if credentials.claimed_id is not None and credentials.claimed_id != authed.user.public_id:
        raise ApplicationError(
            ErrorCode.AUTHENTICATION_FAILED, "The claimed user id is not the authenticated user."
        )
    return authed


def _claims(credentials: Credentials) -> AccessClaims:
    if not credentials.access:
        raise ApplicationError(ErrorCode.NOT_AUTHENTICATED, "Access token not found.")
    return access_decode(credentials.access, allow_expired=credentials.renewable)


def _first_party(credentials: Credentials, claims: AccessClaims | None = None) -> Authenticated:
    if claims is None:
        claims = _claims(credentials)
    if _live(credentials, claims):
        user = user_for_claims(claims)
        return Authenticated(user, claims.sid, claims.expires_at, credentials.refresh, None)
    return _renew(claims, credentials.refresh)


def _live(credentials: Credentials, claims: AccessClaims) -> bool:
    """Whether the access token itself admits the user (else the refresh path, `_renew`)."""
    return not credentials.renewable or claims.expires_at > _now()


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
    """Raise unless the user may still chat and the login session (or, for a tenant's user,
    the credential they connected with) is still good."""
    return identity_check(user=user, session_id=session_id)


def connection_snapshot(*, user: User, session_id: str) -> ConversationSnapshot:
    """Called once the connection is subscribed to the bus: the session is still live (a logout
    or ban that commits from now on reaches the connection through the bus), and what the
    connection needs of the user's conversations. One worker-thread call, three queries: the
    handshake is what a reconnect storm repeats thousands of times."""
    session_check(user=user, session_id=session_id)
    return conversation_snapshot_for_user(user=user, kinds=GREETING_KINDS)


def _now() -> int:
    return int(time.time())


def query_dict(query_string: str) -> dict[str, str]:
    """A request's query string as a dict: the first value of each key, from the first 64
    pairs of its first 8 KiB (a handshake's query is small; a huge one is not parsed whole)."""
    found: dict[str, str] = {}
    for key, value in parse_qsl(query_string[:8192], keep_blank_values=True)[:64]:
        found.setdefault(key, value)
    return found
