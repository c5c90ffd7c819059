"""The operator's HTTP endpoints: /healthz, /readyz, /metrics.

Plain async Django views without authentication classes, sessions or throttles, served ahead of
the middleware chain by `middleware.ops_endpoints` so a probe with an IP as Host, or over plain
HTTP behind an HTTPS redirect, still gets its answer.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import health, metrics

_NO_STORE = {"Cache-Control": "no-store"}
_LOOPBACK = ("127.0.0.0/8", "::1/128")


async def healthz(request: HttpRequest) -> HttpResponse:
    """Called by a liveness probe: the process serves HTTP."""
    return JsonResponse({"alive": True}, headers=_NO_STORE)


async def readyz(request: HttpRequest) -> HttpResponse:
    """Called by a load balancer: 200 when the database (and the bus, when Redis is configured)
    answer within the timeout; 503 naming the failing parts otherwise."""
    failing = await health.failing_parts()
    status = 503 if failing else 200
    response = JsonResponse({"ready": not failing, "failing": failing}, status=status, headers=_NO_STORE)
    # Django logs every 5xx as an ERROR line; a probe every few seconds during an outage would
    # flood the log. health.py logs each change of state instead.
    response._has_been_logged = True
    return response


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _client_in(networks: tuple[Network, ...], address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def metrics_refusal(request: HttpRequest) -> int | None:
    """None when the request may read the metrics, else the status to answer: 404 while the
    endpoint is off, 403 for a wrong token or an address outside the allowed networks.

    The address is the ASGI client's (REMOTE_ADDR), never a forwarded header: behind a proxy,
    let uvicorn's --proxy-headers rewrite it for trusted proxies only.
    """
    chat = settings.CHAT
    if not chat["METRICS"]:
        return 404
    token = chat["METRICS_TOKEN"]
    cidrs = tuple(chat["METRICS_ALLOWED_NETWORKS"])
    if not token and not cidrs:
        cidrs = _LOOPBACK
    if cidrs and not _client_in(_networks(cidrs), request.META.get("REMOTE_ADDR")):
        return 403
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return 403
    return None


async def metrics_view(request: HttpRequest) -> HttpResponse:
    """Called by Prometheus: the text exposition (all workers' values in multi-process mode)."""
    refusal = metrics_refusal(request)
    if refusal is not None:
        response = HttpResponse(status=refusal, headers=_NO_STORE)
        # A disabled endpoint is not worth a warning per scrape; a refused one (403) is.
        response._has_been_logged = refusal == 404
        return response
    # Multi-process mode reads one file per worker and metric type: off the event loop.
    body, content_type = await asyncio.to_thread(metrics.render)
    return HttpResponse(body, content_type=content_type, headers=_NO_STORE)
