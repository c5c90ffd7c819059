"""The drain's parts in process: the hub sends handshakes away and closes connections to
reconnect, the gateway refuses new sessions, deliveries are counted from what the transports
report. The live tests (test_drain.py) SIGTERM real servers."""

import asyncio
import json
import logging
import os
import signal
from typing import Any

import pytest
from django.core.asgi import get_asgi_application

from chatproject.ops import metrics
from gateway import drain as graceful
from gateway.asgi import Gateway
from gateway.audience import Emit
from gateway.connection import Connection
from gateway.hub import Hub
from gateway.protocol import Protocol
from gateway.transports.handshake import Handshake


class Recorder:
    name = "rec"

    def __init__(self, fanout_count: int = 0) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.closed: list[tuple[str, bool]] = []
        self.fanout_count = fanout_count

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        self.sent.append((conn_id, name, payload))

    async def fanout(self, target, name, payload, *, only, skip) -> int:
        self.sent.append((target, name, payload))
        return self.fanout_count

    async def close(self, conn_id: str, *, reconnect: bool = False) -> None:
        self.closed.append((conn_id, reconnect))

    async def join_local(self, conn_id: str, groups: list[str]) -> None: ...

    async def leave_local(self, conn_id: str, groups: list[str]) -> None: ...

    def is_open(self, conn_id: str) -> bool:
        return True


class Bye(Protocol):
    name = "bye"

    def draining(self, conn: Connection) -> list[tuple[str, Any]]:
        return [("server-restart", {"reconnect": True})]

    def render(self, event: dict[str, Any]) -> list[Emit]:
        return [Emit("news", {"n": 1})]


def _connection(conn_id: str, user) -> Connection:
    return Connection(id=conn_id, user=user, session_id="s", expires_at=0, protocol="bye", transport="rec")


def _refusals(reason: str) -> float:
    return (
        metrics.sample(
            "chat_connect_refusals_total", {"protocol": "bye", "transport": "rec", "reason": reason}
        )
        or 0.0
    )


async def test_a_draining_hub_accepts_a_handshake_then_closes_it_to_reconnect_elsewhere():
    transport = Recorder()
    hub = Hub(Bye(), transport)
    hub.draining = True
    before = _refusals("server_draining")
    admission = await hub.connect("c1", Handshake(auth={"token": "t"}, headers={}))
    # Accepted (a CONNECT_ERROR or a namespace disconnect would keep socket.io clients away),
    # then closed as a lost transport, without authenticating anything.
    assert admission.accepted
    assert await hub.greet("c1") is None
    assert transport.closed == [("c1", True)]
    assert _refusals("server_draining") == before + 1
    assert metrics.recent_refusals[-1][1:] == ("bye", "rec", "server_draining")


async def test_hub_drain_sends_the_protocols_draining_events_then_closes_to_reconnect(alice):
    transport = Recorder()
    hub = Hub(Bye(), transport)
    hub.connections["c1"] = _connection("c1", alice.user)
    hub.connections["c2"] = _connection("c2", alice.user)
    await hub.drain()
    assert transport.sent == [
        ("c1", "server-restart", {"reconnect": True}),
        ("c2", "server-restart", {"reconnect": True}),
    ]
    assert transport.closed == [("c1", True), ("c2", True)]


async def test_deliveries_and_fanout_size_come_from_what_the_transport_sent(alice):
    hub = Hub(Bye(), Recorder(fanout_count=3))
    hub.connections["c1"] = _connection("c1", alice.user)
    labels = {"protocol": "bye", "transport": "rec"}
    before = metrics.sample("chat_deliveries_total", labels) or 0.0
    await hub.deliver("u.someone", {"type": "anything"})
    assert metrics.sample("chat_deliveries_total", labels) == before + 3
    assert metrics.sample("chat_fanout_size_bucket", {**labels, "le": "5.0"}) >= 1


async def test_nothing_delivered_counts_nothing(alice):
    hub = Hub(Bye(), Recorder(fanout_count=0))
    hub.connections["c1"] = _connection("c1", alice.user)
    labels = {"protocol": "bye", "transport": "rec"}
    before = metrics.sample("chat_fanout_size_count", labels) or 0.0
    await hub.deliver("u.someone", {"type": "anything"})
    assert (metrics.sample("chat_fanout_size_count", labels) or 0.0) == before


class Asgi:
    """Calls an ASGI app once and keeps what it sent."""

    def __init__(self, app) -> None:
        self.app, self.sent = app, []

    async def __call__(self, scope: dict[str, Any], first: dict[str, Any]) -> list[dict[str, Any]]:
        messages = [first]

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            self.sent.append(message)

        await self.app(scope, receive, send)
        return self.sent


def _scope(kind: str, path: str, query: bytes) -> dict[str, Any]:
    return {
        "type": kind,
        "path": path,
        "query_string": query,
        "headers": [(b"host", b"testserver")],
        "method": "GET",
        "scheme": "http" if kind == "http" else "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "asgi": {"version": "3.0"},
    }


@pytest.fixture
def gateway():
    return Gateway(get_asgi_application())


async def test_a_draining_gateway_refuses_a_new_engineio_session_with_503_and_a_reason(gateway):
    gateway.draining = True
    sent = await Asgi(gateway)(
        _scope("http", "/socket.io/", b"EIO=4&transport=polling"), {"type": "http.request", "body": b""}
    )
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"])["code"] == "server_draining"
    assert metrics.recent_refusals[-1][1:] == ("expresschat", "eio4", "server_draining")


async def test_a_draining_gateway_answers_a_new_websocket_503_where_the_server_can(gateway):
    gateway.draining = True
    for path, query in (("/ws/", b""), ("/socket.io/", b"EIO=4&transport=websocket")):
        scope = {**_scope("websocket", path, query), "extensions": {"websocket.http.response": {}}}
        sent = await Asgi(gateway)(scope, {"type": "websocket.connect"})
        assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 503
        assert json.loads(sent[1]["body"])["code"] == "server_draining"


async def test_a_draining_gateway_closes_a_new_websocket_before_accepting_it_elsewhere(gateway):
    gateway.draining = True
    sent = await Asgi(gateway)(_scope("websocket", "/ws/", b""), {"type": "websocket.connect"})
    assert sent == [{"type": "websocket.close", "code": 1013}]


async def test_a_draining_gateway_lets_requests_of_open_sessions_through(gateway):
    gateway.draining = True
    sent = await Asgi(gateway)(
        _scope("http", "/socket.io/", b"EIO=4&transport=polling&sid=unknown"),
        {"type": "http.request", "body": b""},
    )
    assert sent[0]["status"] == 400  # python-engineio's answer for an unknown session, not ours


async def test_a_gateway_that_is_not_draining_opens_sessions(gateway):
    sent = await Asgi(gateway)(
        _scope("http", "/socket.io/", b"EIO=4&transport=polling"), {"type": "http.request", "body": b""}
    )
    assert sent[0]["status"] == 200


async def test_only_sigterm_starts_the_drain_and_the_log_says_so(caplog):
    """The drain is installed in front of the server's SIGTERM handler; the log names the signal
    before `drain: started`, so a drain in a log always shows what began it (issue 19a: a drain
    the bench's own SIGTERM began was taken for the server stopping itself at its address cap)."""
    handed_over = asyncio.Event()
    ran = []

    def server_handler(signum, frame):  # what uvicorn's handle_exit stands for
        handed_over.set()

    async def run():
        ran.append(True)

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        assert graceful.install(run)
        caplog.set_level(logging.WARNING, logger="gateway.drain")
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(handed_over.wait(), 5)
    finally:
        signal.signal(signal.SIGTERM, original)
    assert ran == [True]
    assert "drain: SIGTERM received" in caplog.messages
