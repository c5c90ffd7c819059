"""The admin's "live" page: this process's figures, read from its own metrics.

Read-only and staff only (mounted with `admin.site.admin_view` in chatproject/urls.py). Every
figure comes from `chatproject.ops.metrics`, the same values /metrics exports, so the page and
Prometheus never disagree; in multi-process mode the page shows the process that answered the
request (each worker has its own page, /metrics has the sum). Refusals come from the bounded
ring `metrics.recent_refusals`: time, protocol, transport and reason code, never a credential.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from . import metrics

TEMPLATE = "admin/ops/live.html"


@dataclass
class MountFigures:
    protocol: str
    transport: str
    live: int = 0
    connects: int = 0
    refusals: int = 0
    disconnects: int = 0
    events: int = 0
    errors: int = 0
    rate_limited: int = 0
    deliveries: int = 0
    refusal_reasons: dict[str, int] = field(default_factory=dict)


def _per_mount() -> list[MountFigures]:
    rows: dict[tuple[str, str], MountFigures] = {}

    def row(labels: dict[str, str]) -> MountFigures:
        key = (labels.get("protocol", ""), labels.get("transport", ""))
        if key not in rows:
            rows[key] = MountFigures(*key)
        return rows[key]

    for name, attr in (
        ("chat_connections", "live"),
        ("chat_connects_total", "connects"),
        ("chat_connect_refusals_total", "refusals"),
        ("chat_disconnects_total", "disconnects"),
        ("chat_events_in_total", "events"),
        ("chat_event_errors_total", "errors"),
        ("chat_events_rate_limited_total", "rate_limited"),
        ("chat_deliveries_total", "deliveries"),
    ):
        for labels, value in metrics.samples(name):
            figures = row(labels)
            setattr(figures, attr, getattr(figures, attr) + int(value))
            if attr == "refusals" and value:
                reasons = figures.refusal_reasons
                reasons[labels["reason"]] = reasons.get(labels["reason"], 0) + int(value)
    return sorted(rows.values(), key=lambda r: (r.protocol, r.transport))


def _total(name: str) -> float:
    return sum(value for _labels, value in metrics.samples(name))


def figures() -> dict[str, Any]:
    """Everything the page shows, as plain data (tests read it too)."""
    batches = _total("chat_db_batch_size_count")
    batched = _total("chat_db_batch_size_sum")
    batch_seconds = _total("chat_db_batch_seconds_sum")
    subscribers = metrics.sample("chat_bus_subscribers")
    bus = {
        "redis": bool(settings.REDIS_URL),
        "published": int(_total("chat_bus_published_total")),
        "publish_errors": int(_total("chat_bus_publish_errors_total")),
        "received": int(_total("chat_bus_received_total")),
        "dispatch_errors": int(_total("chat_bus_lost_total")),
        "reconnects": int(_total("chat_bus_reconnects_total")),
        "subscribers": int(subscribers) if subscribers is not None and settings.REDIS_URL else None,
    }
    refusals_by_reason: dict[str, int] = defaultdict(int)
    for labels, value in metrics.samples("chat_connect_refusals_total"):
        refusals_by_reason[labels["reason"]] += int(value)
    return {
        "mounts": _per_mount(),
        "bus": bus,
        "batches": {
            "count": int(batches),
            "messages": int(batched),
            "mean_size": round(batched / batches, 2) if batches else None,
            "mean_ms": round(batch_seconds / batches * 1000, 2) if batches else None,
            "stored": int(_total("chat_messages_stored_total")),
        },
        "presence_entries": int(metrics.sample("chat_presence_entries") or 0),
        "refusals": [
            {
                "at": datetime.fromtimestamp(r.at, tz=UTC),
                "protocol": r.protocol,
                "transport": r.transport,
                "reason": r.reason,
            }
            for r in reversed(metrics.recent_refusals)
        ],
        "refusals_kept": metrics.REFUSALS_KEPT,
        "refusals_by_reason": dict(sorted(refusals_by_reason.items())),
    }


def live_view(request: HttpRequest) -> TemplateResponse:
    """Called when a staff member opens Admin > Live: this process's figures."""
    context = {
        **admin.site.each_context(request),
        "title": "Live: this server process",
        "figures": figures(),
        "multiprocess": bool(metrics.MULTIPROC_DIR),
        "pid": os.getpid(),
    }
    return TemplateResponse(request, TEMPLATE, context)
