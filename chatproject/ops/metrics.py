"""Every Prometheus metric of the server, and the typed helpers the rest of the code calls.

Nothing else creates metric objects: one module owns the names, labels and buckets, the way one
module owns group names. Callers use the helpers, never the objects, so a label can never be
misspelt at a call site.

Modes. With the environment variable PROMETHEUS_MULTIPROC_DIR set *before the process starts*
(prometheus_client reads it when it is first imported), every worker writes its values to
memory-mapped files in that directory and `/metrics` on any worker answers the sum over all of
them (counters and histograms add up; gauges are summed over live processes, except the bus's
subscriber count, which every process samples from Redis and which shows the most recent
sample). Without it, the default registry holds this process's values only.

Labels. Every per-connection series carries `protocol` (e.g. "expresschat") and `transport`
("eio4", "eio3", "ws"); callers pass code constants, so both sets are bounded. Event names come
from clients: only names registered with `register_event_names(protocol, names)` become label
values, everything else is counted as "other". Reasons and codes are the server's own constants.

Values are recorded whether or not `/metrics` is enabled: recording costs about a microsecond
per call (bench/README.md, "Metrics overhead") and the figures are also meant for in-process
readers (the admin live page).
"""

from __future__ import annotations

import atexit
import os
import time
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
# For measuring only (bench/run.py --server-env CHAT_METRICS_RECORDING=0): every recording helper
# becomes a no-op, so a run can be compared with one that records (bench/README.md, "Metrics
# overhead"). Never in production: /metrics and the admin live page would show zeros.
RECORDING = os.environ.get("CHAT_METRICS_RECORDING", "1") != "0"
OTHER = "other"

_CONN = ("protocol", "transport")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FANOUT_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# --- Connections ------------------------------------------------------------------------------
CONNECTIONS = Gauge("chat_connections", "Live connections.", _CONN, multiprocess_mode="livesum")
CONNECTS = Counter("chat_connects", "Accepted connections.", _CONN)
CONNECT_REFUSALS = Counter(
    "chat_connect_refusals", "Refused connection attempts, by reason.", (*_CONN, "reason")
)
DISCONNECTS = Counter("chat_disconnects", "Closed connections, by reason.", (*_CONN, "reason"))
HANDSHAKE_SECONDS = Histogram(
    "chat_handshake_seconds",
    "From the connection request to the greeting sent.",
    _CONN,
    buckets=_LATENCY_BUCKETS,
)

# --- Events -----------------------------------------------------------------------------------
EVENTS_IN = Counter("chat_events_in", "Client events received, by name.", (*_CONN, "event"))
EVENT_ERRORS = Counter(
    "chat_event_errors", "Client events answered with an error, by code.", (*_CONN, "code")
)
EVENTS_RATE_LIMITED = Counter(
    "chat_events_rate_limited", "Client events refused by a rate limit, by name.", (*_CONN, "event")
)
SEND_ACK_SECONDS = Histogram(
    "chat_send_ack_seconds",
    "From a send event received to its ack written.",
    _CONN,
    buckets=_LATENCY_BUCKETS,
)
MESSAGES_STORED = Counter("chat_messages_stored", "Messages written to the database.")

# --- Deliveries -------------------------------------------------------------------------------
DELIVERIES = Counter("chat_deliveries", "Events delivered to local connections.", _CONN)
FANOUT_SIZE = Histogram(
    "chat_fanout_size", "Local connections one bus event was delivered to.", _CONN, buckets=_FANOUT_BUCKETS
)

# --- Bus --------------------------------------------------------------------------------------
BUS_PUBLISHED = Counter("chat_bus_published", "Events published on the bus.")
BUS_PUBLISH_ERRORS = Counter("chat_bus_publish_errors", "Events whose publish failed.")
BUS_RECEIVED = Counter("chat_bus_received", "Bus messages received by this process's subscription.")
BUS_LOST = Counter(
    "chat_bus_lost", "Bus events received but not delivered to local connections (dispatch failed)."
)
BUS_RECONNECTS = Counter(
    "chat_bus_reconnects", "Receive failures of the bus subscription, each followed by a reconnect."
)
BUS_SUBSCRIBERS = Gauge(
    "chat_bus_subscribers",
    "Processes subscribed to the bus (PUBSUB NUMSUB of the process channel group), last sample.",
    multiprocess_mode="livemostrecent",
)

# --- Database batches, presence ---------------------------------------------------------------
DB_BATCH_SIZE = Histogram(
    "chat_db_batch_size", "Sends written in one database transaction.", buckets=_BATCH_SIZE_BUCKETS
)
DB_BATCH_SECONDS = Histogram(
    "chat_db_batch_seconds", "Duration of one batched database write.", buckets=_BATCH_SECONDS_BUCKETS
)
PRESENCE_ENTRIES = Gauge(
    "chat_presence_entries", "Presence entries this process holds.", multiprocess_mode="livesum"
)

# The last refused connection attempts of this process, newest last (the admin live page). Bounded;
# holds codes and labels only, never a credential or an address.
REFUSALS_KEPT = 50


class Refusal(NamedTuple):
    at: float  # unix seconds
    protocol: str
    transport: str
    reason: str


recent_refusals: deque[Refusal] = deque(maxlen=REFUSALS_KEPT)

# Event names allowed as label values, per protocol; children of the hot counters, cached so the
# hot path is one dict lookup and one increment instead of prometheus_client's label lookup.
_event_names: dict[str, frozenset[str]] = {}
_events_in_children: dict[tuple[str, str, str], Counter] = {}
_rate_limited_children: dict[tuple[str, str, str], Counter] = {}
_delivery_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
_ack_children: dict[tuple[str, str], Histogram] = {}


def register_event_names(protocol: str, names: Iterable[str]) -> None:
    """Make these event names of `protocol` label values; any other name counts as "other"."""
    _event_names[protocol] = _event_names.get(protocol, frozenset()) | frozenset(names)


def _event_child(metric: Counter, cache: dict, protocol: str, transport: str, name: str) -> Counter:
    if name in _event_names.get(protocol, ()):
        child = cache[(protocol, transport, name)] = metric.labels(protocol, transport, name)
        return child
    # Unknown names are not cached under their own key: the cache stays as bounded as the labels.
    key = (protocol, transport, "\x00" + OTHER)
    child = cache.get(key)
    if child is None:
        child = cache[key] = metric.labels(protocol, transport, OTHER)
    return child


# --- Helpers: connections ---------------------------------------------------------------------
def connection_opened(protocol: str, transport: str) -> None:
    """A connection was accepted (after its handshake)."""
    CONNECTS.labels(protocol, transport).inc()
    CONNECTIONS.labels(protocol, transport).inc()


def connection_closed(protocol: str, transport: str, reason: str) -> None:
    """An accepted connection ended; `reason` is a server constant ("client", "ping_timeout", ...)."""
    CONNECTIONS.labels(protocol, transport).dec()
    DISCONNECTS.labels(protocol, transport, reason).inc()


def connect_refused(protocol: str, transport: str, reason: str) -> None:
    """A connection attempt was refused; `reason` is an error code ("unauthorized", ...)."""
    CONNECT_REFUSALS.labels(protocol, transport, reason).inc()
    recent_refusals.append(Refusal(time.time(), protocol, transport, reason))


def handshake_observed(protocol: str, transport: str, seconds: float) -> None:
    HANDSHAKE_SECONDS.labels(protocol, transport).observe(seconds)


# --- Helpers: events --------------------------------------------------------------------------
def event_in(protocol: str, transport: str, name: str) -> None:
    """A client event arrived (hot path)."""
    child = _events_in_children.get((protocol, transport, name))
    if child is None:
        child = _event_child(EVENTS_IN, _events_in_children, protocol, transport, name)
    child.inc()


def event_error(protocol: str, transport: str, code: str) -> None:
    """A client event was answered with the error `code` (an ErrorCode value)."""
    EVENT_ERRORS.labels(protocol, transport, code).inc()


def event_rate_limited(protocol: str, transport: str, name: str) -> None:
    """A client event was refused by a connection or user rate limit."""
    child = _rate_limited_children.get((protocol, transport, name))
    if child is None:
        child = _event_child(EVENTS_RATE_LIMITED, _rate_limited_children, protocol, transport, name)
    child.inc()


def send_ack_observed(protocol: str, transport: str, seconds: float) -> None:
    """A send was answered `seconds` after it arrived (hot path: one per message)."""
    child = _ack_children.get((protocol, transport))
    if child is None:
        child = _ack_children[(protocol, transport)] = SEND_ACK_SECONDS.labels(protocol, transport)
    child.observe(seconds)


def messages_stored(n: int) -> None:
    MESSAGES_STORED.inc(n)


def delivery(protocol: str, transport: str, recipients: int) -> None:
    """One bus event reached `recipients` local connections of this protocol and transport (hot
    path): counts the deliveries and records the fan-out size."""
    children = _delivery_children.get((protocol, transport))
    if children is None:
        children = _delivery_children[(protocol, transport)] = (
            DELIVERIES.labels(protocol, transport),
            FANOUT_SIZE.labels(protocol, transport),
        )
    children[0].inc(recipients)
    children[1].observe(recipients)


# --- Helpers: bus, batches, presence ----------------------------------------------------------
def bus_published(n: int) -> None:
    BUS_PUBLISHED.inc(n)


def bus_publish_error(n: int) -> None:
    BUS_PUBLISH_ERRORS.inc(n)


def bus_received(n: int = 1) -> None:
    BUS_RECEIVED.inc(n)


def bus_lost(n: int) -> None:
    BUS_LOST.inc(n)


def bus_reconnect() -> None:
    BUS_RECONNECTS.inc()


def bus_subscribers_set(n: int) -> None:
    """The latest `PUBSUB NUMSUB` sample of the channel every process subscribes to."""
    BUS_SUBSCRIBERS.set(n)


def db_batch_observed(size: int, seconds: float) -> None:
    DB_BATCH_SIZE.observe(size)
    DB_BATCH_SECONDS.observe(seconds)


def presence_entries_set(n: int) -> None:
    PRESENCE_ENTRIES.set(n)


# --- Exposition -------------------------------------------------------------------------------
def render() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type: all live workers' values in
    multi-process mode, this process's otherwise."""
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def sample(name: str, labels: dict[str, str] | None = None) -> float | None:
    """One sample's value in this process (tests, the admin page): e.g. ("chat_connects_total",
    {"protocol": "expresschat", "transport": "eio4"})."""
    return REGISTRY.get_sample_value(name, labels or {})


def samples(name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample named `name` in this process, with its labels (the admin live page): e.g.
    "chat_connections" gives one (labels, value) per protocol and transport."""
    found = []
    for family in REGISTRY.collect():
        for sample_ in family.samples:
            if sample_.name == name:
                found.append((dict(sample_.labels), sample_.value))
    return found


def _mark_dead() -> None:
    # Live gauges of an exited worker must stop counting; a worker killed with SIGKILL leaves
    # its files behind until the directory is cleared at the next start (docs/operations.md).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid(), MULTIPROC_DIR)


if MULTIPROC_DIR:
    atexit.register(_mark_dead)


def _not_recording(*args: object) -> None:
    return None


if not RECORDING:
    for _helper in (
        "connection_opened",
        "connection_closed",
        "connect_refused",
        "handshake_observed",
        "event_in",
        "event_error",
        "event_rate_limited",
        "send_ack_observed",
        "messages_stored",
        "delivery",
        "bus_published",
        "bus_publish_error",
        "bus_received",
        "bus_lost",
        "bus_reconnect",
        "bus_subscribers_set",
        "db_batch_observed",
        "presence_entries_set",
    ):
        globals()[_helper] = _not_recording
