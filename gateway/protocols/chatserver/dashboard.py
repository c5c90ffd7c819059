"""CHAT SERVER's dashboard credential (spec §2): an HS256 JWT for dashboard users.

Unlike the original's (`JWT_SECRET`, the password hash and the names in the payload, 24 minutes
hard-coded) it carries only `sub` (the user's public id), `scopes` (["admin"] for staff, else
["user"]), `iat` and `exp`; it is signed with a secret of its own, CHAT["DASHBOARD_JWT_SECRET"]
(derived from SECRET_KEY only with DEBUG on; unset in production, the dashboard is not served),
and lives CHAT["DASHBOARD_JWT_SECONDS"]. Each request re-reads the user: a deactivated, banned or
demoted account loses its access at once, whatever its token says.

The token is read where the original read it: `token` of the JSON body, then the `token` query
parameter, then the raw `Authorization` header (a `Bearer ` prefix is also accepted).
"""

import hashlib
import hmac
import logging
import time
from typing import Any

import jwt
from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts import selectors
from accounts.models import User

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ADMIN, USER = "admin", "user"


def secret() -> str | None:
    """The signing secret; None when the dashboard must not be served (unset, DEBUG off)."""
    configured = settings.CHAT.get("DASHBOARD_JWT_SECRET") or ""
    if configured:
        return configured
    if settings.DEBUG:
        key = settings.SECRET_KEY.encode()
        return hmac.new(key, b"chatserver-dashboard-jwt", hashlib.sha256).hexdigest()
    return None


def token_issue(*, user: User, key: str) -> str:
    now = int(time.time())
    claims = {
        "sub": user.public_id,
        "scopes": [ADMIN] if user.is_staff else [USER],
        "iat": now,
        "exp": now + int(settings.CHAT["DASHBOARD_JWT_SECONDS"]),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def token_user(token: object, *, key: str) -> tuple[User, dict[str, Any]] | None:
    """The usable first-party user a valid dashboard token names, with its claims; else None."""
    if not isinstance(token, str) or not token or len(token) > 2048:
        return None
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat", "scopes"]}
        )
    except jwt.PyJWTError:
        return None
    user = selectors.user_get_by_public_id(public_id=claims["sub"])
    if user is None or user.is_external or not user.can_chat or not isinstance(claims["scopes"], list):
        return None
    return user, claims


def token_presented(request: Request) -> str | None:
    data = request.data
    if isinstance(data, dict) and isinstance(data.get("token"), str):
        return data["token"]
    if request.query_params.get("token"):
        return request.query_params["token"]
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() or None


class DashboardUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The dashboard is not configured on this server."
    default_code = "dashboard_unavailable"


def secret_or_unavailable() -> str:
    key = secret()
    if key is None:
        logger.error("CHAT SERVER dashboard refused: CHAT_DASHBOARD_JWT_SECRET is not set (DEBUG off)")
        raise DashboardUnavailable()
    return key


class DashboardAuthentication(BaseAuthentication):
    """request.user = the dashboard user, request.auth = the token's claims."""

    def authenticate(self, request: Request) -> tuple[User, dict[str, Any]] | None:
        key = secret_or_unavailable()
        token = token_presented(request)
        if token is None:
            return None
        found = token_user(token, key=key)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid or expired dashboard token.")
        return found

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class HasScope(BasePermission):
    """The token grants one of the view's `scopes`; "admin" also needs the account to be staff
    now (a demoted admin's token stops granting it)."""

    message = "JWT does not contain required scope."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, dict):
            return False
        granted = set(request.auth.get("scopes", [])) & set(view.scopes)
        if ADMIN in granted and not request.user.is_staff:
            granted.discard(ADMIN)
        return bool(granted)
