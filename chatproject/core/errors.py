"""One error type for the whole project, and its rendering for REST.

Services raise `ApplicationError(code, message, extra)`. DRF renders it as
`{"code", "message", "extra"}` with the status that belongs to the code; the socket layer turns
it into an error ack or an `error` event. Anything else that escapes is logged and reaches the
client only as `internal_error`.
"""

import logging
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    INVALID = "invalid"
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    TOKEN_EXPIRED = "token_expired"
    PERMISSION_DENIED = "permission_denied"
    BANNED = "banned"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    EMAIL_TAKEN = "email_taken"
    CODE_INVALID = "code_invalid"
    CODE_EXPIRED = "code_expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    ALREADY_VERIFIED = "already_verified"
    COOLDOWN = "cooldown"
    THROTTLED = "throttled"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    SERVER_DRAINING = "server_draining"  # the process is shutting down: connect to another
    INTERNAL = "internal_error"


STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID: 400,
    ErrorCode.CODE_INVALID: 400,
    ErrorCode.CODE_EXPIRED: 400,
    ErrorCode.ALREADY_VERIFIED: 400,
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.AUTHENTICATION_FAILED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.BANNED: 403,
    ErrorCode.EMAIL_NOT_VERIFIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.EMAIL_TAKEN: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.TOO_MANY_ATTEMPTS: 429,
    ErrorCode.COOLDOWN: 429,
    ErrorCode.THROTTLED: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_CONNECTIONS: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.SERVER_DRAINING: 503,
}


class ApplicationError(Exception):
    def __init__(self, code: ErrorCode, message: str, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.extra = extra or {}

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "extra": self.extra}


def _from_drf(exc: drf_exceptions.APIException) -> tuple[ApplicationError, int]:
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return ApplicationError(ErrorCode.INVALID, "Invalid input.", {"fields": detail}), 400
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait) if exc.wait is not None else None
        return ApplicationError(ErrorCode.THROTTLED, "Too many requests.", {"retry_after": wait}), 429
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return ApplicationError(ErrorCode.NOT_AUTHENTICATED, str(exc.detail)), 401
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        # An expired token says so (clients refresh on token_expired, and log in again on the rest).
        expired = exc.get_codes() == ErrorCode.TOKEN_EXPIRED
        code = ErrorCode.TOKEN_EXPIRED if expired else ErrorCode.AUTHENTICATION_FAILED
        return ApplicationError(code, str(exc.detail)), 401
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return ApplicationError(ErrorCode.PERMISSION_DENIED, str(exc.detail)), 403
    if isinstance(exc, drf_exceptions.NotFound):
        return ApplicationError(ErrorCode.NOT_FOUND, "Not found."), 404
    if isinstance(exc, drf_exceptions.ParseError):
        return ApplicationError(ErrorCode.INVALID, "Malformed request body."), 400
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return ApplicationError(ErrorCode.INVALID, str(exc.detail)), 415
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return ApplicationError(ErrorCode.INVALID, str(exc.detail)), 405
    return ApplicationError(ErrorCode.INVALID, str(exc.detail)), exc.status_code


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Render every error of the native API in one shape: {"code", "message", "extra"}."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        error, status = exc, exc.status
    elif isinstance(exc, Http404):
        error, status = ApplicationError(ErrorCode.NOT_FOUND, "Not found."), 404
    elif isinstance(exc, RequestDataTooBig):
        error, status = ApplicationError(ErrorCode.PAYLOAD_TOO_LARGE, "Request body too large."), 413
    elif isinstance(exc, PermissionDenied):
        error, status = ApplicationError(ErrorCode.PERMISSION_DENIED, "Permission denied."), 403
    elif isinstance(exc, drf_exceptions.APIException):
        error, status = _from_drf(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait))
    else:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        error, status = ApplicationError(ErrorCode.INTERNAL, "Internal error."), 500
    return Response(error.as_dict(), status=status, headers=headers)
