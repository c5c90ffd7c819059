"""Group fan-out in-process: CPU per delivered copy through the product's outbound path, no
network, no other process (issue 19).

A bus event for a group conversation goes `Hub.deliver` -> ExpressChat's `render` -> the
audience evaluator -> `SocketIOTransport.fanout` -> python-engineio -> the ASGI `send` of each
member's websocket. Here N members (1,000) hold Engine.IO 4 websocket sessions on a real
`GatewayServer`, driven through its ASGI app by in-process fake clients; each client's `send`
does what uvicorn's websockets-sansio protocol does per message before the socket write (a
websockets `ServerProtocol` frames the text), so the figure covers everything the server's event
loop does per copy except the write system call. `time.process_time` over the whole run, so
other load on the machine moves it much less than the bench's throughput figures.

Two shapes, each `--messages` events (default 200):
- `paced`: one event, then wait until every copy is out (the bench's 20 msgs/s: every socket's
  writer wakes once per event);
- `burst`: every event at once, then wait (saturation: bus events arrive back to back).

    .venv/bin/python bench/fanout_cost.py [--members 1000] [--messages 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
os.environ.setdefault("DEBUG", "0")  # as the bench runs the product
os.environ.setdefault("SECRET_KEY", "fanout-cost-" + "x" * 40)  # nothing is signed here

import django  # noqa: E402
import uvloop  # noqa: E402

django.setup()

from fake_ws import FakeWebSocket  # noqa: E402

from accounts.models import User  # noqa: E402
from chatproject.bus.groups import conversation_group  # noqa: E402
from gateway.asgi import _socketio_site  # noqa: E402
from gateway.auth import Authenticated  # noqa: E402
from gateway.registry import mounts  # noqa: E402
from gateway.transports.handshake import Handshake  # noqa: E402

GROUP = "g" * 22
ROOM = conversation_group(GROUP)


class Tally:
    """Socket.IO EVENT packets received by all clients; `reached` is set at `target`."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()

    def expect(self, target: int) -> asyncio.Event:
        self.target = target
        self.reached.clear()
        if self.count >= target:
            self.reached.set()
        return self.reached


def _client(tally: Tally) -> FakeWebSocket:
    """One member's websocket: counts the events (`42...`) it is sent."""

    def on_text(text: str) -> None:
        if text.startswith("42"):
            tally.count += 1
            if tally.count >= tally.target:
                tally.reached.set()

    return FakeWebSocket(on_text)


def _event(n: int, sender: str, origin: str) -> dict:
    return {
        "type": "message.created",
        "origin": origin,  # the sending connection: it has its ack, no echo
        "actor": sender,
        "conversation": {"id": GROUP, "kind": "group"},
        "message": {
            "id": f"m{n:021d}",
            "seq": n + 2,
            "rev": n + 2,
            "kind": "text",
            "content": f"{n} {sender} {n} 12345.678",
            "sender_id": sender,
            "sender_name": "Sender",
            "client_message_id": f"c{n}",
            "created_at": "2026-12-06T03:00:00.000Z",
            "reply_to": None,
            "attachment": None,
        },
    }


async def _run(members: int, messages: int, shape: str) -> tuple[float, int]:
    mount = next(m for m in mounts() if m.transport == "eio4")
    app, hubs = _socketio_site([mount])
    hub = hubs[0]
    sio = hub.transport.sio
    users = [User(public_id=f"u{i:021d}", display_name=f"Member {i}") for i in range(members)]
    by_sid: dict[str, int] = {}

    async def connect(sid: str, environ: dict, auth: object = None) -> None:
        index = int(auth["i"])
        handshake = Handshake(auth=auth, headers={}, transport="eio4", remote="127.0.0.1", namespace="/")
        authed = Authenticated(users[index], "s", int(time.time()) + 3600, None, None)
        hub._admit(sid, authed, handshake)
        await hub.transport.join_local(sid, [ROOM])
        by_sid[sid] = index

    sio.on("connect", connect, namespace=mount.namespace)
    tally = Tally()
    clients = [_client(tally) for _ in range(members)]
    scope = {
        "type": "websocket",
        "path": mount.path,
        "query_string": b"EIO=4&transport=websocket",
        "headers": [(b"host", b"bench"), (b"upgrade", b"websocket"), (b"connection", b"upgrade")],
        "client": ("127.0.0.1", 1),
    }
    tasks = []
    for i, client in enumerate(clients):
        client.inbox.put_nowait({"type": "websocket.connect"})
        client.inbox.put_nowait({"type": "websocket.receive", "text": f'40{{"i":{i}}}'})
        tasks.append(asyncio.create_task(app(dict(scope), client.receive, client.send)))
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 60)
    sender = users[0].public_id
    origin = next(sid for sid, index in by_sid.items() if index == 0)
    start = time.process_time()
    if shape == "burst":
        for n in range(messages):
            await hub.deliver(ROOM, _event(n, sender, origin))
        await asyncio.wait_for(tally.expect(messages * (members - 1)).wait(), 120)
    else:
        for n in range(messages):
            await hub.deliver(ROOM, _event(n, sender, origin))
            await asyncio.wait_for(tally.expect((n + 1) * (members - 1)).wait(), 60)
    spent = time.process_time() - start
    delivered = tally.count
    for client in clients:
        client.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait(tasks, timeout=10)
    return spent, delivered


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for shape in ("paced", "burst"):
        figures = []
        for _ in range(args.rounds):
            spent, delivered = uvloop.run(_run(args.members, args.messages, shape))  # as `make run`
            figures.append(spent / delivered * 1e6)
        print(
            f"{shape}: {args.members} members, {args.messages} events: "
            f"us of CPU per delivery {' '.join(f'{f:.2f}' for f in figures)} "
            f"(median {statistics.median(figures):.2f})"
        )


if __name__ == "__main__":
    main()
