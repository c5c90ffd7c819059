"""Metrics of two server processes on one Redis bus, after a scripted session.

Each process of `redis_server_pair` exports its own /metrics (one endpoint per process, no
multi-process directory). The pair is shared with other tests, so every figure is read before
and after the session and the test asserts on the differences.
"""

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PAIR_METRICS_TOKEN
from tests.ops.conftest import http_get
from tests.realtime.clients import SioClient

pytestmark = pytest.mark.django_db(transaction=True)

# Events a client gets straight from its own process (greeting, a handler's emits, the error
# event); everything else it receives came through the bus and the transport's fan-out.
DIRECT = {
    "connect",
    "user-id",
    "personal-chat-list",
    "group-chat-list",
    "create-personal-chat-creator",
    "error",
}


def scrape(server) -> dict[tuple[str, frozenset], float]:
    status, body, _ = http_get(f"{server.url}/metrics", {"Authorization": f"Bearer {PAIR_METRICS_TOKEN}"})
    assert status == 200, body[:300]
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def value(values: dict, name: str, **labels: str) -> float:
    return values.get((name, frozenset(labels.items())), 0.0)


class Delta:
    def __init__(self, before: dict, after: dict) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


async def test_two_processes_count_connections_events_deliveries_and_bus(redis_server_pair, make_user):
    a, b = redis_server_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    before = [await asyncio.to_thread(scrape, server) for server in (a, b)]

    on_a = await SioClient().connect(a.url, token=alice.access)
    on_b = await SioClient().connect(b.url, token=bob.access)
    for client in (on_a, on_b):
        await client.next("group-chat-list")
    opened = await on_a.call("create-personal-chat", {"Receiver": bob.id})
    chat_id = opened["data"]["ChatId"]
    for i in range(3):
        ack = await on_a.call("send-personal-message", {"ChatId": chat_id, "Content": f"a{i}"})
        assert ack["ok"], ack
    for i in range(2):
        ack = await on_b.call("send-personal-message", {"ChatId": chat_id, "Content": f"b{i}"})
        assert ack["ok"], ack
    bad = await on_a.call("no-such-event", {})
    assert bad["error"]["code"] == "invalid"
    for _ in range(3):
        await on_b.next("receive-personal-message")
    for _ in range(2):
        await on_a.next("receive-personal-message")
    await asyncio.sleep(1.5)  # stragglers (presence) and one more subscriber sample
    after = [await asyncio.to_thread(scrape, server) for server in (a, b)]
    fanned = [sum(1 for name in client.names() if name not in DIRECT) for client in (on_a, on_b)]
    await on_a.close()
    await on_b.close()

    da, db = Delta(before[0], after[0]), Delta(before[1], after[1])
    mount = {"protocol": "expresschat", "transport": "eio4"}
    for delta in (da, db):
        assert delta("chat_connects_total", **mount) == 1
        assert delta("chat_connections", **mount) == 1
        assert delta("chat_bus_publish_errors_total") == 0
        assert delta("chat_bus_lost_total") == 0
    assert da("chat_events_in_total", **mount, event="send-personal-message") == 3
    assert da("chat_events_in_total", **mount, event="create-personal-chat") == 1
    assert da("chat_events_in_total", **mount, event="other") == 1  # "no-such-event"
    assert da("chat_event_errors_total", **mount, code="invalid") == 1
    assert db("chat_events_in_total", **mount, event="send-personal-message") == 2
    assert db("chat_event_errors_total", **mount, code="invalid") == 0
    assert (da("chat_messages_stored_total"), db("chat_messages_stored_total")) == (3, 2)
    assert da("chat_send_ack_seconds_count", **mount) == 3 and db("chat_send_ack_seconds_count", **mount) == 2
    # Deliveries: exactly the bus events each client received, each fan-out recorded once.
    assert da("chat_deliveries_total", **mount) == fanned[0] >= 2
    assert db("chat_deliveries_total", **mount) == fanned[1] >= 3
    assert da("chat_fanout_size_count", **mount) == fanned[0]  # one recipient per fan-out here
    # Each process published its own sends (and more: chat creation, presence, receipts)...
    assert da("chat_bus_published_total") >= 4 and db("chat_bus_published_total") >= 2
    # ...and received the other's through Redis.
    assert db("chat_bus_received_total") >= 3 and da("chat_bus_received_total") >= 2
    for values in after:
        # Both processes' subscriptions are alive (other live servers of this run may share the
        # channel prefix, so at least two).
        assert value(values, "chat_bus_subscribers") >= 2
