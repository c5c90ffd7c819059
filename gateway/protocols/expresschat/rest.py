"""ExpressChat-compatible auth endpoints at the root: /signup, /login, /verify, /resend,
/logout, /update-access-token, and the pages / and /auth.

The bodies, `success` codes, typos, statuses and cookies are those of the original server
(docs: /work/shared/protocols/seed000-expresschat.md, section 2), byte for byte; its security
holes are closed: every field must be a string, tokens carry only the user id and session id,
logins do not tell unknown emails from wrong passwords, guesses are limited. Each view parses,
calls the same service as the native API, and maps ApplicationError codes to the wire bodies.
"""

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.http import BodyMalformed, BodyTooLarge, json_loads_strict, read_body_bounded, throttle_wait
from accounts.tokens import TokenPair
from chatproject.core.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

REFRESH_COOKIE = "refresh_token"
ACCESS_COOKIE = "access_token"
SUSPENDED = (403, {"success": -1, "message": "Account suspended"})


def _json(status: int, payload: dict[str, Any]) -> HttpResponse:
    """Express's res.json(): compact separators, key order as given, utf-8 charset."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return HttpResponse(body, status=status, content_type="application/json; charset=utf-8")


def _failure(message: str) -> dict[str, Any]:
    return {"success": -1, "message": message}


def _message_only(message: str) -> dict[str, Any]:
    return {"message": message}


class _Refused(Exception):
    """Raised inside a view to answer with `response` at once."""

    def __init__(self, response: HttpResponse):
        self.response = response


def expresschat_endpoint(
    *,
    method: str,
    fallback: tuple[int, dict[str, Any]],
    shape: Callable[[str], dict[str, Any]] = _failure,
) -> Callable:
    """Wrap a view so nothing escapes as HTML or a 500: refusals raised as _Refused are
    answered, and unexpected errors are logged and answered with the endpoint's own
    "exception" body from the original server (`fallback`). `shape` builds the body of the
    errors the original never had (oversized or malformed body, throttled)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, shape, *args, **kwargs)
            except _Refused as refused:
                return refused.response
            except Exception:
                logger.exception("ExpressChat endpoint %s failed", view.__name__)
                return _json(*fallback)

        # The original client sends no CSRF token. Bodies are read only as application/json,
        # which a cross-site form cannot send without a CORS preflight (and CORS is closed);
        # /logout has no body, and SameSite=Lax keeps cross-site POSTs from carrying cookies.
        return csrf_exempt(require_http_methods([method])(wrapper))

    return decorate


def _throttle(request: HttpRequest, scope: str, shape: Callable[[str], dict[str, Any]]) -> None:
    wait = throttle_wait(request, scope)
    if wait is not None:
        response = _json(429, shape("Too Many Requests"))
        response["Retry-After"] = str(wait)
        raise _Refused(response)


def _body(request: HttpRequest, shape: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """The JSON body as Express's json() gave it: parsed only for a JSON content type, else
    {}; an empty body is {}, and anything but an object has no fields."""
    if request.content_type.lower() != "application/json":
        return {}
    try:
        raw = read_body_bounded(request)
        data = json_loads_strict(raw) if raw else {}
    except BodyTooLarge as exc:
        raise _Refused(_json(413, shape("Request body too large"))) from exc
    except BodyMalformed as exc:
        raise _Refused(_json(400, shape("Malformed JSON body"))) from exc
    return data if isinstance(data, dict) else {}


def _strings(data: dict[str, Any], *names: str) -> list[str] | None:
    """The named fields if every one is a non-empty string (the original's truthiness check,
    plus the type check it lacked: objects, arrays and numbers count as missing)."""
    values = [data.get(name) for name in names]
    if all(isinstance(value, str) and value for value in values):
        return values
    return None


def _optional_string(data: dict[str, Any], name: str) -> bool:
    return name not in data or data[name] is None or isinstance(data[name], str)


def _cookie_set(response: HttpResponse, name: str, value: str) -> None:
    # Session cookies (no max-age) as in the original; Secure follows the session cookie.
    response.set_cookie(
        name, value, path="/", httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE
    )


def _auth_cookies_set(response: HttpResponse, tokens: TokenPair) -> HttpResponse:
    _cookie_set(response, REFRESH_COOKIE, tokens.refresh)  # refresh first, as the original
    _cookie_set(response, ACCESS_COOKIE, tokens.access)
    return response


# --- endpoints -----------------------------------------------------------------------------

SIGNUP_ERRORS = {
    ErrorCode.EMAIL_TAKEN: (404, {"message": "User Already Exists", "success": 0}),
    ErrorCode.BANNED: SUSPENDED,
    ErrorCode.PERMISSION_DENIED: SUSPENDED,
}


@expresschat_endpoint(method="POST", fallback=(400, {"success": -1, "message": "Email Dont Exist"}))
def signup(request: HttpRequest, shape) -> HttpResponse:
    """Called by the sign-up form with {name, email, password} (and `source` from the app)."""
    _throttle(request, "auth_signup", shape)
    data = _body(request, shape)
    fields = _strings(data, "name", "email", "password")
    if fields is None or not _optional_string(data, "source"):
        return _json(404, {"success": -1, "message": "Enter All credentials properly"})
    name, email, password = fields
    try:
        sent = services.user_register(email=email, password=password, display_name=name)
    except ApplicationError as exc:
        if exc.code in SIGNUP_ERRORS:
            return _json(*SIGNUP_ERRORS[exc.code])
        if exc.code == ErrorCode.INVALID and "email" in exc.extra.get("fields", {}):
            return _json(400, {"success": -1, "message": "Email Don't Exist, Enter a Valid Email"})
        return _json(exc.status if exc.status < 500 else 400, _failure(exc.message))
    if sent.resent:
        return _json(
            200, {"success": 1, "message": "Authentication mail sent successfully again to the user"}
        )
    return _json(200, {"success": 1, "message": "Authentication mail sent successfully"})


LOGIN_ERRORS = {
    ErrorCode.AUTHENTICATION_FAILED: (200, {"success": 0, "message": "Incorrect PassWord"}),
    ErrorCode.EMAIL_NOT_VERIFIED: (404, {"success": -2, "message": "Account Exist but Email not verified"}),
    ErrorCode.BANNED: SUSPENDED,
    ErrorCode.PERMISSION_DENIED: SUSPENDED,
}


@expresschat_endpoint(method="POST", fallback=(200, {"success": -1, "message": "Some Error Occured"}))
def login(request: HttpRequest, shape) -> HttpResponse:
    """Called by the login form with {email, password}; tokens come back only as cookies."""
    _throttle(request, "auth_login", shape)
    fields = _strings(_body(request, shape), "email", "password")
    if fields is None:
        return _json(404, {"success": -1, "msg": "Bad request"})
    try:
        result = services.user_authenticate(email=fields[0], password=fields[1])
    except ApplicationError as exc:
        if exc.code in LOGIN_ERRORS:
            return _json(*LOGIN_ERRORS[exc.code])
        if exc.code == ErrorCode.THROTTLED:  # the account's login backoff: as the throttles answer
            response = _json(429, shape("Too Many Requests"))
            response["Retry-After"] = str(exc.extra.get("retry_after", 1))
            return response
        raise
    response = _json(200, {"success": 1, "message": "User Logged in succcessfully"})
    return _auth_cookies_set(response, result.tokens)


def _query_one(request: HttpRequest, name: str) -> str | None:
    values = request.GET.getlist(name)
    return values[0] if len(values) == 1 and values[0] else None


@expresschat_endpoint(method="GET", fallback=(400, {"success": -1, "message": "SERVER ERROR OCCURED"}))
def verify(request: HttpRequest, shape) -> HttpResponse:
    """Called when the link in the verification mail is opened (or by the app with
    source=app): verifies, starts a session, sets the cookies."""
    _throttle(request, "auth_verify", shape)
    invalid = (400, {"success": 0, "message": "Token Expired or not a valid token"})
    email, token = _query_one(request, "email"), _query_one(request, "token")
    if email is None or token is None:
        return _json(*invalid)
    try:
        result = services.user_verify_email(email=email, code=token)
    except ApplicationError as exc:
        return _json(*(SUSPENDED if exc.code in (ErrorCode.BANNED, ErrorCode.PERMISSION_DENIED) else invalid))
    if _query_one(request, "source") == "app":
        response = _json(200, {"success": 1, "message": "User Verified and Cookies are returned in response"})
    else:
        response = render(request, "accounts/email_verified.html")
    return _auth_cookies_set(response, result.tokens)


RESEND_ERRORS = {
    ErrorCode.NOT_FOUND: (404, {"message": "No user with this email exists", "success": -1}),
    ErrorCode.ALREADY_VERIFIED: (404, {"message": "Email Already Verified", "success": 0}),
    ErrorCode.BANNED: SUSPENDED,
    ErrorCode.PERMISSION_DENIED: SUSPENDED,
}


@expresschat_endpoint(method="POST", fallback=(400, {"success": -1, "message": "Server Error"}))
def resend(request: HttpRequest, shape) -> HttpResponse:
    """Called by the app with {email} (and `source`) to get a new code."""
    _throttle(request, "auth_resend", shape)
    data = _body(request, shape)
    fields = _strings(data, "email")
    if fields is None or not _optional_string(data, "source"):
        return _json(404, {"message": "Email Not Specified", "success": -1})
    try:
        services.verification_resend(email=fields[0])
    except ApplicationError as exc:
        if exc.code in RESEND_ERRORS:
            return _json(*RESEND_ERRORS[exc.code])
        return _json(exc.status if exc.status < 500 else 400, _failure(exc.message))
    return _json(200, {"success": 1, "message": "Verification Link Sent Succesfully"})


@expresschat_endpoint(
    method="POST", fallback=(200, {"message": "User Logged out successfully"}), shape=_message_only
)
def logout(request: HttpRequest, shape) -> HttpResponse:
    """Called to log out. The body is ignored, as in the original; the session of the cookies
    is revoked (its sockets closed) and the cookies that were sent are cleared."""
    refresh, access = request.COOKIES.get(REFRESH_COOKIE), request.COOKIES.get(ACCESS_COOKIE)
    if refresh or access:
        try:
            services.user_logout(refresh_token=refresh or None, access_token=access or None)
        except ApplicationError:
            pass  # stale or forged cookies: no session to end, but still clear them
    response = _json(200, {"message": "User Logged out successfully"})
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        if name in request.COOKIES:
            response.delete_cookie(name, path="/")
    return response


@expresschat_endpoint(method="POST", fallback=(401, {"message": "Invalid Access Token"}), shape=_message_only)
def update_access_token(request: HttpRequest, shape) -> HttpResponse:
    """Called by the web client with {acessToken} (sic) after the socket handed it a fresh
    access token. Only a valid token of a live session of the refresh cookie's user is stored."""
    token = _body(request, shape).get("acessToken")
    if not isinstance(token, str):
        return _json(404, {"message": "No Access Token Specified"})
    try:
        services.session_access_token_check(
            access_token=token, refresh_token=request.COOKIES.get(REFRESH_COOKIE)
        )
    except ApplicationError:
        return _json(401, {"message": "Invalid Access Token"})
    response = _json(200, {"message": "Cookie updated successfully"})
    _cookie_set(response, ACCESS_COOKIE, token)
    return response
