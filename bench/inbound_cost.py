"""CPU per client event through the Socket.IO transport alone (Engine.IO 4 websocket session ->
Socket.IO packet -> the namespace's handler -> the ack written), in-process, no database, no bus.

The gateway's python-socketio server (`GatewayServer`, as gateway/asgi.py makes it) with one
namespace bound by the real `SocketIOTransport` to a stub hub that answers every event at once
with an ack shaped like a send's; `--clients` fake websocket clients (bench/fake_ws.py: frames
written as uvicorn writes them) each keep `--window` `send-personal-message` events in flight.
What the figure leaves out: the hub, the protocol, the batcher, the bus (bench/direct_cost.py
has them all). Deterministic enough for callgrind (no timers, no other threads):

    .venv/bin/python bench/inbound_cost.py [--events 50000] [--rounds 3]
    INBOUND_COST_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        .venv/bin/python bench/inbound_cost.py --events 5000 --rounds 1

then `totals:` of callgrind.out.<pid> / 5000.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "inbound-cost-" + "x" * 40)
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402
import uvloop  # noqa: E402

django.setup()

import socketio  # noqa: E402
from fake_ws import FakeWebSocket  # noqa: E402

from gateway.transports import safe_json  # noqa: E402
from gateway.transports.handshake import Admission  # noqa: E402
from gateway.transports.socketio import GatewayServer, SocketIOTransport  # noqa: E402

SCOPE = {
    "type": "websocket",
    "path": "/socket.io/",
    "query_string": b"EIO=4&transport=websocket",
    "headers": [(b"host", b"bench"), (b"upgrade", b"websocket"), (b"connection", b"upgrade")],
    "client": ("127.0.0.1", 1),
    "extensions": {},
}
ACK = {
    "ok": True,
    "data": {
        "Id": "m-0123456789abcdef",
        "Seq": 12,
        "ChatId": "c-0123456789abcdef",
        "Timestamp": "2026-12-06T11:00:00.000Z",
        "ClientMessageId": "x-1",
        "Duplicate": False,
        "Rev": 40,
    },
}


class StubHub:
    """What the transport calls on a hub: every connection admitted, every event acked."""

    async def connect(self, conn_id, handshake):
        return Admission(True)

    def lane(self, conn_id, event):
        return None  # no event runs ahead of the connection's earlier ones (gateway/lanes.py)

    async def greet(self, conn_id):
        return None

    async def forget(self, conn_id):
        return None

    async def handle(self, conn_id, event, args, *, oversize=False):
        return [ACK]


class Client:
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.sent = 0
        self.ws = FakeWebSocket(self.on_text)

    def pump(self) -> None:
        while self.sent - self.tally.acked_by(self) < self.tally.window and self.tally.sending:
            n = self.sent
            self.sent += 1
            self.ws.emit(
                f'42{n}["send-personal-message",{{"ChatId":"c-0123456789abcdef","Content":"{n} hello",'
                f'"ClientMessageId":"x-{n}"}}]'
            )

    def on_text(self, text: str) -> None:
        if text.startswith("43"):
            self.tally.ack(self)
            self.pump()


class Tally:
    def __init__(self, window: int, target: int) -> None:
        self.window, self.target = window, target
        self.sending = True
        self.acked = 0
        self.per_client: dict[int, int] = {}
        self.done = asyncio.Event()

    def acked_by(self, client: Client) -> int:
        return self.per_client.get(id(client), 0)

    def ack(self, client: Client) -> None:
        self.per_client[id(client)] = self.per_client.get(id(client), 0) + 1
        self.acked += 1
        if self.acked >= self.target:
            self.sending = False
            self.done.set()


async def _run(clients: int, window: int, warmup: int, events: int) -> float:
    sio = GatewayServer(
        event_limit=65536,
        connect_timeout=10,
        packet_rate=(10**9, 10**9),
        async_mode="asgi",
        json=safe_json,
        always_connect=True,
        async_handlers=False,
        ping_interval=3600,  # no pings while measured, however slow the run (callgrind)
        ping_timeout=3600,
        logger=False,
        engineio_logger=False,
    )
    SocketIOTransport(sio, "/").bind(StubHub())
    app = socketio.ASGIApp(sio, socketio_path="socket.io")
    tally = Tally(window, warmup)
    group = [Client(tally) for _ in range(clients)]
    tasks = []
    for client in group:
        client.ws.inbox.put_nowait({"type": "websocket.connect"})
        client.ws.emit("40")
        tasks.append(asyncio.create_task(app(dict(SCOPE), client.ws.receive, client.ws.send)))
    await asyncio.wait_for(asyncio.gather(*(c.ws.connected.wait() for c in group)), 10)
    for client in group:
        client.pump()
    await asyncio.wait_for(tally.done.wait(), 60)
    tally.sending, tally.target = True, tally.acked + events
    tally.done.clear()
    _callgrind("on")
    start = time.process_time()
    for client in group:
        client.pump()
    await asyncio.wait_for(tally.done.wait(), 600)
    cpu = time.process_time() - start
    _callgrind("off")
    for client in group:
        client.ws.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait(tasks, timeout=10)
    return cpu / events * 1e6


def _callgrind(state: str) -> None:
    if os.environ.get("INBOUND_COST_CALLGRIND") == "1":
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = []
    for _ in range(args.rounds):
        figures.append(uvloop.run(_run(args.clients, args.window, args.warmup, args.events)))
        print(f"{figures[-1]:.2f} us CPU per event", flush=True)
    print(f"median {statistics.median(figures):.2f} us CPU per event")


if __name__ == "__main__":
    main()
