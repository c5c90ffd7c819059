"""An app's token-verification URL (seed 003's `verifyUrl`, like Centrifugo's connect proxy).

`GET <url>?token=<token>` with a timeout of CHAT TENANT_VERIFY_TIMEOUT_SECONDS: only a 2xx
answer admits; any other status, a redirect, a timeout or a refused connection refuses, each
with its own reason. Answers (2xx or not) are remembered for CHAT TENANT_VERIFY_CACHE_SECONDS,
for at most CHAT TENANT_VERIFY_CACHE_MAX tokens; network failures are not remembered (the next
attempt asks again).

This is a blocking call and touches no database: the gateway runs it on its own small thread
pool (gateway.sync.call_outside), never on the database thread; REST runs it in the request's
thread. Tokens are never logged: the cache is keyed by a hash of app and token.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from urllib.parse import urlencode, urlsplit

from django.conf import settings

from chatproject.core.errors import ApplicationError, ErrorCode

from .identity import Verification

logger = logging.getLogger(__name__)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a 3xx is an answer, not a 2xx: refused
        return None


_opener = urllib.request.build_opener(_NoRedirect)
_lock = threading.Lock()
_cache: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (valid until, status)


def _key(verification: Verification) -> str:
    return hashlib.sha256(f"{verification.app_id}\0{verification.token}".encode()).hexdigest()


def _cached(key: str) -> int | None:
    with _lock:
        found = _cache.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del _cache[key]
            return None
        return found[1]


def _remember(key: str, status: int) -> None:
    chat = settings.CHAT
    with _lock:
        _cache[key] = (time.monotonic() + chat["TENANT_VERIFY_CACHE_SECONDS"], status)
        _cache.move_to_end(key)
        while len(_cache) > chat["TENANT_VERIFY_CACHE_MAX"]:
            _cache.popitem(last=False)


def verification_cache_clear() -> None:
    with _lock:
        _cache.clear()


def _refused(message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.AUTHENTICATION_FAILED, message)


def verification_check(verification: Verification) -> None:
    """Raise ApplicationError(authentication_failed) unless the app's URL admits the token."""
    key = _key(verification)
    status = _cached(key)
    if status is None:
        status = _ask(verification)
        _remember(key, status)
    if not 200 <= status < 300:
        raise _refused(f"The app's verification URL refused the token (HTTP {status}).")


def _ask(verification: Verification) -> int:
    url = verification.url
    if urlsplit(url).scheme not in ("http", "https"):
        raise _refused("The app's verification URL is not an http(s) URL.")
    full = url + ("&" if "?" in url else "?") + urlencode({"token": verification.token})
    timeout = settings.CHAT["TENANT_VERIFY_TIMEOUT_SECONDS"]
    started = time.monotonic()
    try:
        with _opener.open(urllib.request.Request(full, method="GET"), timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:  # an answer, just not a 2xx one
        return exc.code
    except TimeoutError as exc:
        raise _refused(f"The app's verification URL did not answer within {timeout:g} s.") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError | socket.timeout):
            raise _refused(f"The app's verification URL did not answer within {timeout:g} s.") from exc
        logger.info(
            "verification URL of app %s unreachable after %.2fs: %s",
            verification.app_id,
            time.monotonic() - started,
            type(reason).__name__,
        )
        raise _refused("The app's verification URL could not be reached.") from exc
