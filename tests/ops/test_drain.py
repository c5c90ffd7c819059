"""Graceful drain (gateway/drain.py): SIGTERM a live server process during traffic.

The server on the same port is then started again (what a load balancer would give a client:
another process on the same database); clients reconnect by themselves and resend what was not
acked, with its ClientMessageId. The database must then hold every acked message exactly once
and every sent one at most once.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import socketio

from messaging.models import Conversation, Message
from tests import conftest as root
from tests.conftest import require_node_package

pytestmark = pytest.mark.django_db(transaction=True)

DRAIN_SECONDS = 5
ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
NODE_SCRIPT = Path(__file__).resolve().parent / "js" / "drain_reconnect.mjs"


# ExpressChat on Engine.IO 4, on Engine.IO 3 (Socket.IO 2 clients: same path, its own namespace,
# since one protocol claims a path and namespace once), and /ws/.
MOUNTS = [
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
    },
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio3",
        "path": "/socket.io/",
        "namespace": "/v2",
    },
    {"protocol": "gateway.protocols.expresschat", "transport": "ws", "path": "/ws/"},
]


def start(tmp: Path) -> root.ServerProcess:
    env = {
        "CHAT_PROTOCOLS": json.dumps(MOUNTS),
        "CHAT_DRAIN_SECONDS": str(DRAIN_SECONDS),
        # A burst of sends well above the per-connection and per-user rates.
        "CHAT_SOCKET_RATE_BURST": "10000",
        "CHAT_SOCKET_RATE_PER_SECOND": "10000",
        "CHAT_USER_RATE_BURST": "10000",
        "CHAT_USER_RATE_PER_SECOND": "10000",
    }
    return root._start_servers(1, tmp, root.REDIS_URL, env)[0]


def terminate(server: root.ServerProcess) -> float:
    """SIGTERM, then the seconds until the process exited."""
    began = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(DRAIN_SECONDS + 10)
    return time.monotonic() - began


def restart(server: root.ServerProcess, tmp: Path) -> root.ServerProcess:
    server.stop()  # closes its log
    again = root.ServerProcess(server.port, server.env, tmp / f"restarted-{server.port}.log")
    again.wait_ready()
    return again


class RetryingSender:
    """A python-socketio client that reconnects by itself and resends every unacked message,
    with the same ClientMessageId, until it is acked (what a careful client does)."""

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.sio = socketio.AsyncClient(
            reconnection=True,
            reconnection_attempts=0,
            reconnection_delay=0.2,
            reconnection_delay_max=0.5,
            randomization_factor=0,
        )
        self.connected = asyncio.Event()
        self.connects = 0
        self.reasons: list[str] = []
        self.acked: dict[str, dict] = {}
        self.attempts: Counter[str] = Counter()
        self.greetings = 0  # the last greeting event of ExpressChat: the hub counts the connection
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("group-chat-list", self._on_greeting)

    def _on_greeting(self, data=None) -> None:
        self.greetings += 1

    def _on_connect(self) -> None:
        self.connects += 1
        self.connected.set()

    def _on_disconnect(self, reason=None) -> None:
        self.reasons.append(reason)
        self.connected.clear()

    async def connect(self, url: str, token: str, transport: str = "websocket") -> None:
        await self.sio.connect(url, auth={"token": token}, transports=[transport], wait_timeout=5)

    async def send(self, cid: str) -> None:
        while True:
            await self.connected.wait()
            self.attempts[cid] += 1
            payload = {"ChatId": self.chat_id, "Content": f"drain {cid}", "ClientMessageId": cid}
            try:
                ack = await self.sio.call("send-personal-message", payload, timeout=3)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                continue  # no answer (the connection went away): resend after reconnecting
            if ack.get("ok"):
                self.acked[cid] = ack["data"]
                return
            # Only "the connection has ended; reconnect" (an event that arrived as its connection
            # closed, not run) may be retried; anything else is a failure of the test.
            assert ack["error"]["code"] == "not_authenticated", ack
            await asyncio.sleep(0.05)


async def test_sigterm_during_a_burst_loses_no_acked_message(make_user, tmp_path):
    alice, bob = make_user("Alice"), make_user("Bob")
    server = start(tmp_path)
    senders = {"alice": RetryingSender(""), "bob": RetryingSender("")}
    await senders["alice"].connect(server.url, alice.access)
    await senders["bob"].connect(server.url, bob.access)
    opened = await senders["alice"].sio.call("create-personal-chat", {"Receiver": bob.id}, timeout=5)
    for sender in senders.values():
        sender.chat_id = opened["data"]["ChatId"]
    chat = Conversation.objects.get(public_id=opened["data"]["ChatId"])
    tag = uuid.uuid4().hex[:8]
    # Well past what the drain lets through before it closes the connections (up to 1,435 of
    # 2,000 with pipelined sends on a quiet machine; all 800 of 800 once).
    per_sender, lanes = 3000, 4
    cids = {name: [f"{tag}-{name}-{i}" for i in range(per_sender)] for name in senders}

    async def lane(sender: RetryingSender, mine: list[str]) -> None:
        for cid in mine:
            await sender.send(cid)

    tasks = [
        asyncio.create_task(lane(sender, cids[name][k::lanes]))
        for name, sender in senders.items()
        for k in range(lanes)
    ]
    while sum(len(s.acked) for s in senders.values()) < 40:
        await asyncio.sleep(0.01)
    exited_after = await asyncio.to_thread(terminate, server)
    acked_before = sum(len(s.acked) for s in senders.values())
    server = await asyncio.to_thread(restart, server, tmp_path)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 90)
    finally:
        for sender in senders.values():
            await sender.sio.disconnect()
        server.stop()

    log = (tmp_path / "server0.log").read_text()
    assert "drain: done" in log, log[-2000:]
    assert exited_after < DRAIN_SECONDS + 3
    assert acked_before < 2 * per_sender  # the signal came during the burst
    for sender in senders.values():
        # A lost transport, not "io server disconnect": python-socketio reconnected by itself.
        assert sender.reasons and all(r != sender.sio.reason.SERVER_DISCONNECT for r in sender.reasons)
        assert sender.connects == 2
    # The drain interrupted sends: some needed a second attempt (the scenario did happen).
    assert any(n > 1 for s in senders.values() for n in s.attempts.values())

    sent = {cid for mine in cids.values() for cid in mine}
    stored = Counter(
        Message.objects.filter(conversation=chat, client_message_id__startswith=tag).values_list(
            "client_message_id", flat=True
        )
    )
    assert set(stored) <= sent and max(stored.values()) == 1  # every sent message at most once
    ids = dict(
        Message.objects.filter(conversation=chat, client_message_id__startswith=tag).values_list(
            "client_message_id", "public_id"
        )
    )
    for sender in senders.values():
        for cid, ack in sender.acked.items():
            assert ids[cid] == ack["Id"]  # every acked message stored, exactly once, as acked
    assert len(stored) == len(sent)  # and here every message was eventually acked


@pytest.mark.parametrize("client_version", ["v4", "v2"])
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_socketio_js_client_reconnects_after_a_drain(make_user, tmp_path, transport, client_version):
    """socket.io-client 4.0.1 (the ExpressChat page's client) and 2.3.1 (Engine.IO 3) see the
    drain as a lost transport and reconnect; a namespace disconnect would have been final for
    4.x ("io server disconnect")."""
    require_node_package("socket.io-client", "4.0.1")
    require_node_package("socket.io-client-v2", "2.3.1")
    alice = make_user("Alice")
    server = start(tmp_path)
    client = subprocess.Popen(
        [NODE, str(NODE_SCRIPT), server.url + ("/v2" if client_version == "v2" else "")],
        env={
            **os.environ,
            "TOKEN": alice.access,
            "REFRESH": alice.refresh,
            "TRANSPORTS": transport,
            "CLIENT": client_version,
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(client.stdout.readline()) == {"event": "connect"}
        assert json.loads(client.stdout.readline()) == {"event": "greeted"}
        terminate(server)
        server = restart(server, tmp_path)
        records = [json.loads(line) for line in client.stdout]
        assert client.wait(10) == 0
    finally:
        client.kill()
        server.stop()
    until_done = records[: records.index({"event": "done"})]
    disconnects = [r["reason"] for r in until_done if r["event"] == "disconnect"]
    assert disconnects in (["transport close"], ["transport error"])
    assert {"event": "connect"} in until_done
    assert "drain: started with 1 connections" in (tmp_path / "server0.log").read_text()


async def test_python_socketio_polling_client_reconnects_after_a_drain(make_user, tmp_path):
    alice = make_user("Alice")
    server = start(tmp_path)
    sender = RetryingSender("unused")
    await sender.connect(server.url, alice.access, transport="polling")
    try:
        while sender.greetings < 1:
            await asyncio.sleep(0.02)
        exited_after = await asyncio.to_thread(terminate, server)
        server = await asyncio.to_thread(restart, server, tmp_path)
        deadline = time.monotonic() + 15
        while sender.greetings < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await sender.sio.disconnect()
        server.stop()
    assert "drain: started with 1 connections" in (tmp_path / "server0.log").read_text()
    assert exited_after < 2  # the long poll was answered, nothing waited for a ping timeout
    assert sender.connects == 2 and sender.greetings == 2
    assert sender.reasons[0] == sender.sio.reason.TRANSPORT_ERROR
