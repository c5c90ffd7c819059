"""A protocol's REST routes first on its own mount's host name or port.

Protocol REST routes are included at the site root (chatproject/urls.py), all of them, in the
order of the registry. Legacy apps reuse the same paths (seed 001's and seed 003's `POST /user`),
so a request that one of the registry's host- or port-bound mounts serves is resolved with that
mount's protocol routes ahead of the site's (`request.urlconf`); every other request sees the
site's routes as before.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from types import ModuleType

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.urls import include, path
from django.utils.decorators import sync_and_async_middleware

from .registry import Mount, mounts, protocol


@cache
def _urlconf(module: str, root: str) -> ModuleType:
    """The site's routes with one protocol's routes first (a module object: the resolver
    caches it)."""
    urlconf = ModuleType(f"{module}.__first")
    urlconf.urlpatterns = [path("", include(module)), *import_module(root).urlpatterns]
    return urlconf


def _bound_mounts() -> list[tuple[Mount, str]]:
    return [
        (mount, urls)
        for mount in mounts()
        if (mount.host is not None or mount.port is not None) and (urls := protocol(mount.protocol).urls)
    ]


def urlconf_for(host: str, port: int | None) -> ModuleType | None:
    """The urlconf of a request to this Host and listening port, or None: the site's."""
    for mount, urls in _bound_mounts():
        if mount.serves_address(host, port):
            return _urlconf(urls, settings.ROOT_URLCONF)
    return None


def _route(request) -> None:
    try:
        port = int(request.META.get("SERVER_PORT") or 0) or None
    except ValueError:
        port = None
    urlconf = urlconf_for(request.META.get("HTTP_HOST", ""), port)
    if urlconf is not None:
        request.urlconf = urlconf


@sync_and_async_middleware
def mount_urlconf(get_response):
    """Middleware: resolve requests of a host- or port-bound mount with its protocol's routes
    first."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            _route(request)
            return await get_response(request)

    else:

        def middleware(request):
            _route(request)
            return get_response(request)

    return middleware
