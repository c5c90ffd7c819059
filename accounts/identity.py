"""Who is connecting: one resolver for every credential form, every protocol and every realm.

A realm is the first-party realm (accounts with email and password) or one tenant app. A mount
of the protocol registry (gateway/registry.py) and the REST authentication each give a `Policy`:
the realm and the credential forms accepted there. `identity_resolve` turns what the client
presented into exactly one user of that realm, or raises ApplicationError:

- `access`: the product's own access JWT (accounts.tokens), first-party realm;
- `tenant_jwt`: a token the tenant's backend signed with one of its app's two secrets, HS256
  only: `sub` (external id), `app` (app id), `exp` (required, at most
  CHAT TENANT_TOKEN_MAX_TTL_SECONDS ahead), optional `iat` and `name`. The user is created on
  first sight (the tenant vouched for them by signing), the way Stream does it;
- `registered_token`: seed 003's opaque per-user token the tenant registered (hash lookup);
- `id_handle`: a random handle this server issued for one identity (seeds 001, 002).

Revocation is "issued before T", per user and per app (`tokens_revoked_before`): a tenant JWT's
`iat`, a registered token's and a handle's creation time are what is compared; a tenant JWT
without `iat` is refused once a revocation time is set (it cannot prove it came after).

A connection has no LoginSession unless it is first-party, so its `session_id` says how it was
admitted, for the re-checks at greeting time (`identity_check`) and for revocation events:
`t:<iat>` (tenant JWT), `r:<issued>` (registered token), `h:<handle id>` (handle); first-party
connections keep their LoginSession sid (24 hex digits).

Nothing here calls a verification URL: the resolver runs in the database thread, and the call
(accounts.verification) must not block it. The resolver only says which call is due.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from .models import EXTERNAL_ID_RE, App, IdHandle, RegisteredToken, User
from .tokens import AccessClaims, access_decode, user_for_claims

logger = logging.getLogger(__name__)

FIRST_PARTY = "first_party"
APPS = "apps"
ACCESS = "access"
TENANT_JWT = "tenant_jwt"
REGISTERED_TOKEN = "registered_token"
ID_HANDLE = "id_handle"

# Credentials that do not expire by themselves (registered tokens, handles): the connection's
# expiry timer is set this far away and revocation ends it instead.
NO_EXPIRY = 2**31 - 1
OPAQUE_MAX_LENGTH = 4096
_HANDLE_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")
_DIGEST_SALT = "accounts.identity.secret_digest"


@dataclass(frozen=True)
class Policy:
    """Who may connect at a mount: the realm, the forms taken, optionally only some apps (by
    public id), and the protocol's name (checked against App.allowed_protocols)."""

    realm: str = FIRST_PARTY
    forms: tuple[str, ...] = (ACCESS,)
    apps: tuple[str, ...] | None = None
    protocol: str | None = None


@dataclass(frozen=True)
class Presented:
    """What a client presented: a token (any form), a handle, and the id it claims to be."""

    token: str | None = None
    handle: str | None = None
    claimed_id: str | None = None


@dataclass(frozen=True)
class Verification:
    """A call to an app's verification URL that must answer 2xx before the identity counts."""

    app_id: str
    url: str
    token: str


@dataclass(frozen=True)
class Identity:
    user: User
    session_id: str
    expires_at: int  # unix seconds
    verification: Verification | None = None

    @property
    def realm(self) -> str | None:
        """The app's public id, or None for the first-party realm."""
        return self.user.app.public_id if self.user.app_id is not None else None


def secret_digest(value: str) -> str:
    """The keyed hash (HMAC-SHA256 under a key derived from SECRET_KEY) stored for registered
    tokens and handles: a database dump alone cannot be used to test guesses offline."""
    return salted_hmac(_DIGEST_SALT, value, algorithm="sha256").hexdigest()


def external_id_valid(value: object) -> bool:
    return isinstance(value, str) and EXTERNAL_ID_RE.fullmatch(value) is not None


def _refuse(message: str, code: ErrorCode = ErrorCode.AUTHENTICATION_FAILED) -> ApplicationError:
    return ApplicationError(code, message)


# --- the resolver ------------------------------------------------------------------------------


def identity_resolve(*, policy: Policy, presented: Presented) -> Identity:
    """The one user (of the policy's realm) the presented credentials name, or raise
    ApplicationError (not_authenticated, authentication_failed, token_expired, banned).

    A claimed id (`presented.claimed_id`: a payload or query `user_id`) must name the resolved
    user (their external id, or their public id), or the credentials are refused."""
    if policy.realm == FIRST_PARTY:
        identity = _first_party(policy, presented)
    else:
        identity = _tenant(policy, presented)
    _claimed_id_check(identity.user, presented.claimed_id)
    return identity


def _first_party(policy: Policy, presented: Presented) -> Identity:
    if ACCESS not in policy.forms or not presented.token:
        raise _refuse("Access token not found.", ErrorCode.NOT_AUTHENTICATED)
    claims = access_decode(presented.token)
    user = user_for_claims(claims)
    return Identity(user, claims.sid, claims.expires_at)


def _tenant(policy: Policy, presented: Presented) -> Identity:
    if presented.handle is not None and ID_HANDLE in policy.forms:
        return _handle(policy, presented.handle)
    token = presented.token
    if not token:
        raise _refuse("No credentials found.", ErrorCode.NOT_AUTHENTICATED)
    if TENANT_JWT in policy.forms and looks_like_tenant_jwt(token):
        return _tenant_jwt(policy, token)
    if REGISTERED_TOKEN in policy.forms:
        return _registered(policy, token)
    if TENANT_JWT in policy.forms:
        return _tenant_jwt(policy, token)  # refused there, with the reason
    raise _refuse("These credentials are not accepted here.")


def _claimed_id_check(user: User, claimed: object) -> None:
    if claimed is None:
        return
    if claimed not in (user.public_id, user.external_id):
        raise _refuse("The claimed user id is not the authenticated user.")


def looks_like_tenant_jwt(token: str) -> bool:
    """A JWT whose unverified payload names an app (first-party tokens never carry `app`)."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > OPAQUE_MAX_LENGTH:
        return False
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return False
    return isinstance(payload, dict) and "app" in payload


def _app_get(app_id: object, policy: Policy) -> App:
    if not isinstance(app_id, str) or not is_public_id(app_id):
        raise _refuse("Unknown app.")
    if policy.apps is not None and app_id not in policy.apps:
        raise _refuse("Unknown app.")
    app = App.objects.filter(public_id=app_id, is_active=True).first()
    if app is None:
        raise _refuse("Unknown app.")
    if policy.protocol and not app.allows_protocol(policy.protocol):
        raise _refuse("This app may not use this protocol.", ErrorCode.PERMISSION_DENIED)
    return app


def _tenant_jwt(policy: Policy, token: str) -> Identity:
    chat = settings.CHAT
    if len(token) > chat["TENANT_TOKEN_MAX_BYTES"]:
        raise _refuse("Token too large.")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise _refuse("Malformed token.") from exc
    # Only HS256, whatever the header says: `none`, HS512 and public-key algorithms are refused
    # before any key is tried (the algorithm list below says so again).
    if header.get("alg") != "HS256":
        raise _refuse("Only HS256 tokens are accepted.")
    app = _app_get(unverified.get("app") if isinstance(unverified, dict) else None, policy)
    claims = _verified_claims(token, app)
    now = time.time()
    external_id, exp, iat = claims.get("sub"), claims.get("exp"), claims.get("iat")
    if not external_id_valid(external_id):
        raise _refuse("sub must be 1 to 64 letters, digits, _ or -.")
    if claims.get("app") != app.public_id:
        raise _refuse("Unknown app.")
    if (
        not isinstance(exp, int)
        or exp > now + chat["TENANT_TOKEN_MAX_TTL_SECONDS"] + chat["TENANT_CLOCK_SKEW_SECONDS"]
    ):
        raise _refuse(f"exp may be at most {chat['TENANT_TOKEN_MAX_TTL_SECONDS']} seconds ahead.")
    if iat is not None and (not isinstance(iat, int) or iat > now + chat["TENANT_CLOCK_SKEW_SECONDS"]):
        raise _refuse("iat must be a time in the past.")
    name = claims.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 100):
        raise _refuse("name must be a display name of at most 100 characters.")
    user = _external_user_for_token(app, external_id, name)
    _usable_check(user)
    _revocation_check(user, issued_at=iat)
    verification = Verification(app.public_id, app.verify_url, token) if app.verify_url else None
    return Identity(user, f"t:{iat if iat is not None else 0}", exp, verification)


def _verified_claims(token: str, app: App) -> dict:
    """The claims, checked with either of the app's secrets (rotation keeps both valid)."""
    # `iat` is checked by the caller, with CHAT TENANT_CLOCK_SKEW_SECONDS of slack; `exp` here,
    # with none.
    options = {"require": ["exp", "sub", "app"], "verify_aud": False, "verify_iat": False}
    for secret in app.secrets:
        try:
            return jwt.decode(token, secret, algorithms=["HS256"], options=options)
        except jwt.InvalidSignatureError:
            continue
        # The signature was good from here on: PyJWT checks claims after it.
        except jwt.ExpiredSignatureError as exc:
            raise _refuse("Token expired.", ErrorCode.TOKEN_EXPIRED) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _refuse(f"The token has no {exc.claim} claim.") from exc
        except jwt.InvalidTokenError as exc:
            raise _refuse("Invalid token.") from exc
    raise _refuse("Invalid token signature.")


def _external_user_for_token(app: App, external_id: str, name: str | None) -> User:
    user = User.objects.select_related("app").filter(app=app, external_id=external_id).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            user = User.objects.create(
                app=app, external_id=external_id, email=None, display_name=(name or external_id).strip()
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
    except IntegrityError:  # created concurrently by another connection of the same user
        user = User.objects.get(app=app, external_id=external_id)
    logger.info("external user %s created for app %s", user.public_id, app.public_id)
    return User.objects.select_related("app").get(pk=user.pk)


def _registered(policy: Policy, token: str) -> Identity:
    if len(token) > OPAQUE_MAX_LENGTH:
        raise _refuse("Token too large.")
    rows = RegisteredToken.objects.select_related("app", "user__app").filter(
        token_hash=secret_digest(token), app__is_active=True
    )
    if policy.apps is not None:
        rows = rows.filter(app__public_id__in=policy.apps)
    found = list(rows[:2])
    # Two apps registered the same token: which realm is meant cannot be known; refuse.
    if len(found) != 1:
        raise _refuse("token key mismatch")
    row = found[0]
    if policy.protocol and not row.app.allows_protocol(policy.protocol):
        raise _refuse("This app may not use this protocol.", ErrorCode.PERMISSION_DENIED)
    _usable_check(row.user)
    issued = math.ceil(row.created_at.timestamp())  # the session id keeps whole seconds
    _revocation_check(row.user, issued_at=row.created_at.timestamp())
    app = row.app
    verification = Verification(app.public_id, app.verify_url, token) if app.verify_url else None
    return Identity(row.user, f"r:{issued}", NO_EXPIRY, verification)


def _handle(policy: Policy, handle: object) -> Identity:
    if not isinstance(handle, str) or _HANDLE_RE.fullmatch(handle) is None:
        raise _refuse("Unknown or revoked handle.")
    rows = IdHandle.objects.select_related("app", "user__app").filter(
        handle_hash=secret_digest(handle), revoked_at__isnull=True, app__is_active=True
    )
    if policy.apps is not None:
        rows = rows.filter(app__public_id__in=policy.apps)
    row = rows.first()
    if row is None:
        raise _refuse("Unknown or revoked handle.")
    if policy.protocol and not row.app.allows_protocol(policy.protocol):
        raise _refuse("This app may not use this protocol.", ErrorCode.PERMISSION_DENIED)
    _usable_check(row.user)
    _revocation_check(row.user, issued_at=row.created_at.timestamp())
    return Identity(row.user, f"h:{row.public_id}", NO_EXPIRY)


def _usable_check(user: User) -> None:
    if user.is_banned:
        raise _refuse("This account is banned.", ErrorCode.BANNED)
    if not user.can_chat:
        raise _refuse("Account not usable.")


def _revocation_check(user: User, *, issued_at: float | None) -> None:
    """Refuse credentials issued before the user's or the app's revocation time."""
    times = [t for t in (user.tokens_revoked_before, user.app.tokens_revoked_before) if t is not None]
    if not times:
        return
    if issued_at is None or issued_at < max(times).timestamp():
        raise _refuse("Token revoked.")


# --- re-checks of a live connection ------------------------------------------------------------


def identity_check(*, user: User, session_id: str) -> User:
    """Raise unless the identity a connection was admitted with still holds: the user may chat
    and, for first-party users, the login session is live; for external users, the app is
    active and the credential was not revoked since (handle revoked, or issued before a
    revocation time). Reads the user afresh."""
    if user.app_id is None:
        return user_for_claims(AccessClaims(user_id=user.public_id, sid=session_id, expires_at=0))
    fresh = User.objects.select_related("app").filter(pk=user.pk).first()
    if fresh is None or not fresh.app.is_active:
        raise _refuse("Unknown user.")
    _usable_check(fresh)
    kind, _, value = session_id.partition(":")
    if kind == "h":
        handle = IdHandle.objects.filter(public_id=value, user=fresh, revoked_at__isnull=True).first()
        if handle is None:
            raise _refuse("Handle revoked.")
        _revocation_check(fresh, issued_at=handle.created_at.timestamp())
    elif kind in ("t", "r") and value.isdigit():
        issued = int(value)
        _revocation_check(fresh, issued_at=issued if (issued or kind == "r") else None)
    else:
        raise _refuse("Unknown session.")
    return fresh
