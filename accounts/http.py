"""HTTP plumbing shared by the native API and the ExpressChat endpoints: bounded JSON bodies
and the auth throttles. No business rules here."""

import json
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.request import RawPostDataException
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from chatproject.core.errors import ApplicationError, ErrorCode


class BodyTooLarge(Exception):
    pass


class BodyMalformed(Exception):
    pass


def _body_limit() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def read_body_bounded(request: HttpRequest) -> bytes:
    """The raw body, refusing more than DATA_UPLOAD_MAX_MEMORY_SIZE bytes.

    Django checks the limit only against Content-Length (and DRF's parsers not at all), so a
    chunked body could be read whole; this reads at most limit + 1 bytes and stops.
    """
    limit = _body_limit()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if limit is not None and declared > limit:
        raise BodyTooLarge
    try:
        raw = request.read(limit + 1) if limit is not None else request.read()
    except RawPostDataException:  # something read the body already
        raw = request.body
    if limit is not None and len(raw) > limit:
        raise BodyTooLarge
    return raw


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_loads_strict(raw: bytes) -> Any:
    """json.loads without NaN/Infinity; deep nesting and bad bytes become BodyMalformed."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BodyMalformed from exc


class BoundedJSONParser(BaseParser):
    """JSON with the body size limit and the strictness of `json_loads_strict`.

    Not a JSONParser subclass on purpose: DRF reads `request.body` for those, which raises
    Django's RequestDataTooBig (a 500 through the API's exception handler) before any parser
    runs. A plain parser gets the stream and reads at most limit + 1 bytes.
    """

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = _body_limit()
        if stream is None:
            return {}
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise ApplicationError(
                ErrorCode.PAYLOAD_TOO_LARGE, "Request body too large.", {"max_bytes": limit}
            )
        try:
            return json_loads_strict(raw)
        except BodyMalformed as exc:
            raise ParseError("Malformed JSON.") from exc


class AuthRateThrottle(ScopedRateThrottle):
    """ScopedRateThrottle for the auth endpoints of both REST flavours.

    Two changes from DRF's: rates are read when the request comes in (DRF binds them at import,
    so override_settings had no effect), and X-Forwarded-For is trusted only when NUM_PROXIES
    says a proxy is in front; otherwise any client could pick a fresh identity per request.
    """

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:
        return api_settings.DEFAULT_THROTTLE_RATES

    def get_ident(self, request) -> str:
        if api_settings.NUM_PROXIES is None:
            return request.META.get("REMOTE_ADDR", "")
        return super().get_ident(request)


def throttle_wait(request: HttpRequest, scope: str) -> int | None:
    """For plain Django views: None if allowed, else the seconds to wait (counts the request)."""
    throttle = AuthRateThrottle()
    if throttle.allow_request(request, SimpleNamespace(throttle_scope=scope)):
        return None
    wait = throttle.wait()
    return max(1, int(wait + 0.999)) if wait is not None else 1
