"""Metrics: the helpers move the values they name, event names stay bounded, /metrics is off by
default and refuses wrong tokens and addresses, and in multi-process mode the figures of several
workers add up."""

import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from chatproject.ops import metrics

from .conftest import METRICS_TOKEN, http_get

P, T = "opstest", "eio4"
CONN = {"protocol": P, "transport": T}


def value(name: str, **labels: str) -> float:
    return metrics.sample(name, labels) or 0.0


def chat(**overrides):
    return override_settings(CHAT={**settings.CHAT, **overrides})


# --- Helpers ----------------------------------------------------------------------------------


def test_connection_helpers_count_connects_live_connections_refusals_and_disconnects():
    before_live = value("chat_connections", **CONN)
    before_connects = value("chat_connects_total", **CONN)
    metrics.connection_opened(P, T)
    metrics.connection_opened(P, T)
    metrics.connection_closed(P, T, "client")
    metrics.connect_refused(P, T, "unauthorized")
    metrics.handshake_observed(P, T, 0.03)
    assert value("chat_connections", **CONN) == before_live + 1
    assert value("chat_connects_total", **CONN) == before_connects + 2
    assert value("chat_disconnects_total", **CONN, reason="client") >= 1
    assert value("chat_connect_refusals_total", **CONN, reason="unauthorized") >= 1
    assert value("chat_handshake_seconds_count", **CONN) >= 1
    assert value("chat_handshake_seconds_bucket", **CONN, le="0.05") >= 1


def test_event_names_outside_the_registered_set_count_as_other():
    metrics.register_event_names(P, ["send", "typing"])
    before_send = value("chat_events_in_total", **CONN, event="send")
    before_other = value("chat_events_in_total", **CONN, event="other")
    metrics.event_in(P, T, "send")
    for i in range(50):
        metrics.event_in(P, T, f"junk-{i}")
    assert value("chat_events_in_total", **CONN, event="send") == before_send + 1
    assert value("chat_events_in_total", **CONN, event="other") == before_other + 50
    assert metrics.sample("chat_events_in_total", {**CONN, "event": "junk-1"}) is None
    metrics.event_rate_limited(P, T, "typing")
    metrics.event_rate_limited(P, T, "nonsense")
    assert value("chat_events_rate_limited_total", **CONN, event="typing") >= 1
    assert value("chat_events_rate_limited_total", **CONN, event="other") >= 1


def test_event_error_send_ack_and_messages_stored():
    before = value("chat_messages_stored_total")
    metrics.event_error(P, T, "not_found")
    metrics.send_ack_observed(P, T, 0.2)
    metrics.messages_stored(3)
    assert value("chat_event_errors_total", **CONN, code="not_found") >= 1
    assert value("chat_send_ack_seconds_count", **CONN) >= 1
    assert value("chat_messages_stored_total") == before + 3


def test_delivery_counts_recipients_and_records_fanout_size():
    before = value("chat_deliveries_total", **CONN)
    before_count = value("chat_fanout_size_count", **CONN)
    metrics.delivery(P, T, 40)
    metrics.delivery(P, T, 2)
    assert value("chat_deliveries_total", **CONN) == before + 42
    assert value("chat_fanout_size_count", **CONN) == before_count + 2
    assert value("chat_fanout_size_bucket", **CONN, le="50.0") >= 2


def test_bus_batch_and_presence_helpers():
    names = ["chat_bus_published_total", "chat_bus_publish_errors_total", "chat_bus_lost_total"]
    before = [value(n) for n in names] + [value("chat_bus_reconnects_total")]
    metrics.bus_published(5)
    metrics.bus_publish_error(2)
    metrics.bus_lost(2)
    metrics.bus_reconnect()
    metrics.bus_subscribers_set(3)
    metrics.db_batch_observed(17, 0.004)
    metrics.presence_entries_set(12)
    after = [value(n) for n in names] + [value("chat_bus_reconnects_total")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [5, 2, 2, 1]
    assert value("chat_bus_subscribers") == 3
    assert value("chat_presence_entries") == 12
    assert value("chat_db_batch_size_bucket", le="20.0") >= 1
    assert value("chat_db_batch_seconds_bucket", le="0.005") >= 1


# --- /metrics access --------------------------------------------------------------------------


def test_metrics_off_by_default_is_404():
    assert settings.CHAT["METRICS"] is False
    assert Client().get("/metrics").status_code == 404


def test_metrics_with_token_refuses_missing_or_wrong_token_and_serves_right_one():
    metrics.event_in(P, T, "send")
    with chat(METRICS=True, METRICS_TOKEN="right-token", METRICS_ALLOWED_NETWORKS=[]):
        client = Client(REMOTE_ADDR="198.51.100.4")
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION="Basic right-token").status_code == 403
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer right-token")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "chat_connections",
        "chat_events_in_total",
        "chat_bus_published_total",
        "chat_fanout_size_bucket",
    ):
        assert name in text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"chat_connects", "chat_handshake_seconds", "chat_bus_subscribers"} <= families


def test_metrics_networks_use_the_client_address_not_forwarded_headers():
    with chat(METRICS=True, METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=["10.0.0.0/8", "2001:db8::/32"]):
        forwarded = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3")
        assert forwarded.get("/metrics").status_code == 403
        assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="2001:db8::5").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="::ffff:10.0.0.9").get("/metrics").status_code == 200


def test_metrics_without_token_or_networks_allows_loopback_only():
    with chat(METRICS=True, METRICS_TOKEN="", METRICS_ALLOWED_NETWORKS=[]):
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="192.168.1.5").get("/metrics").status_code == 403


def test_metrics_with_token_and_networks_requires_both():
    with chat(METRICS=True, METRICS_TOKEN="tok", METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"]):
        assert Client(REMOTE_ADDR="10.0.0.1").get("/metrics").status_code == 403
        outside = Client(REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer tok")
        assert outside.get("/metrics").status_code == 403
        inside = Client(REMOTE_ADDR="10.0.0.1", HTTP_AUTHORIZATION="Bearer tok")
        assert inside.get("/metrics").status_code == 200


def test_live_metrics_multiprocess_endpoint(metrics_server):
    url = f"{metrics_server.url}/metrics"
    assert http_get(url)[0] == 403
    assert http_get(url, {"Authorization": "Bearer nope"})[0] == 403
    status, body, headers = http_get(url, {"Authorization": f"Bearer {METRICS_TOKEN}", "Host": "192.0.2.10"})
    assert status == 200, body
    text = body.decode()
    # Unlabelled metrics exist from the start in every process; labelled ones from first use.
    for name in ("chat_bus_published_total", "chat_messages_stored_total", "chat_db_batch_size_bucket"):
        assert name in text
    assert any(metrics_server.prom_dir.iterdir()), "multi-process mode writes its files"


# --- Multi-process: figures add up across workers -----------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys
    from chatproject.ops import metrics
    n = int(sys.argv[1])
    metrics.register_event_names("expresschat", ["send"])
    for _ in range(n):
        metrics.connection_opened("expresschat", "eio4")
        metrics.event_in("expresschat", "eio4", "send")
        metrics.delivery("expresschat", "eio4", 10)
    metrics.bus_publish_error(n)
    if sys.argv[2] == "stay":
        print("ready", flush=True)
        sys.stdin.readline()
    """
)


def test_multiprocess_figures_add_up_across_workers(tmp_path):
    prom = tmp_path / "prom"
    prom.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    run = [sys.executable, "-c", WORKER]
    subprocess.run([*run, "3", "exit"], env=env, check=True, timeout=30)
    staying = subprocess.Popen(
        [*run, "2", "stay"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert staying.stdout.readline().strip() == "ready"
        render = (
            "from chatproject.ops import metrics; import sys; sys.stdout.write(metrics.render()[0].decode())"
        )
        text = subprocess.run(
            [sys.executable, "-c", render], env=env, check=True, timeout=30, capture_output=True, text=True
        ).stdout
    finally:
        staying.stdin.write("\n")
        staying.stdin.close()
        staying.wait(10)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def at(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    conn = {"protocol": "expresschat", "transport": "eio4"}
    assert at("chat_connects_total", **conn) == 5
    # Live connections: only the worker still running counts (the other marked itself dead).
    assert at("chat_connections", **conn) == 2
    assert at("chat_events_in_total", **conn, event="send") == 5
    assert at("chat_deliveries_total", **conn) == 50
    assert at("chat_fanout_size_count", **conn) == 5
    assert at("chat_bus_publish_errors_total") == 5


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_ops_routes_are_mounted_in_urls(path):
    from django.urls import resolve

    assert resolve(path).url_name == path.strip("/")
