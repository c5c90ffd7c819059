"""Template context the web client's pages need from settings."""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def media_origins(request: HttpRequest) -> dict[str, str]:
    """Where uploaded files may come from besides the page's own origin, for the pages' CSP
    (img-src, media-src): the origin of PUBLIC_BASE_URL (file URLs are built on it), of an
    absolute MEDIA_URL, and CHAT MEDIA_ORIGINS (an object store's or a CDN's)."""
    candidates = [settings.PUBLIC_BASE_URL, settings.MEDIA_URL, *settings.CHAT["MEDIA_ORIGINS"]]
    origins = dict.fromkeys(o for o in map(_origin, candidates) if o)
    return {"media_origins": " ".join(origins)}
