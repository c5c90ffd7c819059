"""DRF authentication for the native API: `Authorization: Bearer <access>`, or the web
client's httpOnly `access_token` cookie (with a CSRF check, as cookies come with every request).

Unlike simplejwt's stock class, both also refuse tokens of a revoked session and banned or
deactivated users, so logout and bans take effect on REST at once.

The Bearer token may also be a tenant-signed token (docs/tenants.md): the user is then an
external identity of that app, resolved by accounts.identity exactly as on a socket (and the
app's verification URL, if any, is called here, in the request's thread).
"""

from django.middleware.csrf import CsrfViewMiddleware
from rest_framework import authentication, exceptions

from chatproject.core.errors import ApplicationError

from .identity import APPS, TENANT_JWT, Policy, Presented, identity_resolve, looks_like_tenant_jwt
from .models import User
from .tokens import access_decode, user_for_claims
from .verification import verification_check

TENANT_POLICY = Policy(realm=APPS, forms=(TENANT_JWT,))


def _user_for_token(token: str, *, tenant: bool = False) -> User:
    try:
        if tenant and looks_like_tenant_jwt(token):
            identity = identity_resolve(policy=TENANT_POLICY, presented=Presented(token=token))
            if identity.verification is not None:
                verification_check(identity.verification)
            return identity.user
        return user_for_claims(access_decode(token))
    except ApplicationError as exc:
        raise exceptions.AuthenticationFailed(exc.message, code=str(exc.code)) from exc


class ChatJWTAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request) -> tuple[User, str] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        return _user_for_token(token, tenant=True), token

    def authenticate_header(self, request) -> str:
        return self.keyword


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason  # the reason, instead of Django's HTML 403 page


class ChatCookieAuthentication(authentication.BaseAuthentication):
    """The `access_token` cookie the ExpressChat login sets (the web client's only credential;
    its pages never see a token). Cookies ride along with cross-site requests too, so unsafe
    methods must carry the CSRF token (header X-CSRFToken), exactly as Django's forms do.
    Runs after the Bearer check: a request with an Authorization header never uses cookies."""

    cookie = "access_token"  # gateway.protocols.expresschat.rest.ACCESS_COOKIE

    def authenticate(self, request) -> tuple[User, str] | None:
        token = request.COOKIES.get(self.cookie)
        if not token:
            return None
        user = _user_for_token(token)
        self._enforce_csrf(request)
        return user, token

    def _enforce_csrf(self, request) -> None:
        check = _CsrfCheck(lambda _request: None)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF check failed: {reason}")

    def authenticate_header(self, request) -> str:
        return "Bearer"
