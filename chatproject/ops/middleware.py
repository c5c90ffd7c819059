"""Serve /healthz, /readyz and /metrics before any other middleware.

Probes come from load balancers and scrapers that know nothing of the site: they use an IP as
Host (CommonMiddleware would answer 400 for a host outside ALLOWED_HOSTS), plain HTTP (an HTTPS
redirect would answer 301) and no cookies. None of the chain's work (sessions, CSRF, auth,
security headers for browsers) applies to them, so this middleware, first in MIDDLEWARE, answers
them directly; every other request passes through untouched at the cost of one dict lookup.
"""

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

from .urls import ENDPOINTS


@sync_and_async_middleware
def ops_endpoints(get_response):
    if iscoroutinefunction(get_response):

        async def middleware(request):
            view = ENDPOINTS.get(request.path_info)
            if view is not None and request.method in ("GET", "HEAD"):
                return await view(request)
            return await get_response(request)

    else:

        def middleware(request):
            view = ENDPOINTS.get(request.path_info)
            if view is not None and request.method in ("GET", "HEAD"):
                return async_to_sync(view)(request)
            return get_response(request)

    return middleware
