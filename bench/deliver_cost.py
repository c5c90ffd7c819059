"""Direct messages' outbound half in-process: CPU per message of what the event loop does for a
direct message besides receiving it from the bus, no network, no database, no other thread.

Per message, as the product does it: the sender's copy asked about before it is published
(`Hub.wants` on the sender's user group, what the bridge's `unwanted_here` asks), then the
receiver's copy (a copy of the event, as one off the bus) through `Hub.deliver` -> ExpressChat's
`render` -> the audience evaluator -> `SocketIOTransport.fanout` -> python-engineio -> the ASGI
`send` of the receiver's websocket. `--pairs` sender/receiver pairs hold Engine.IO 4 websocket
sessions on a real `GatewayServer` (ExpressChat's mount), driven through its ASGI app by
in-process fake clients whose `send` frames the text as uvicorn does (bench/fake_ws.py). No
timers and no threads while measured, so instruction counts repeat:

    .venv/bin/python bench/deliver_cost.py [--pairs 100] [--messages 20000] [--rounds 3]
    PYTHONHASHSEED=0 DELIVER_COST_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        .venv/bin/python bench/deliver_cost.py --messages 5000 --rounds 1

then `totals:` of callgrind.out.<pid> / 5000.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
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
os.environ.setdefault("DEBUG", "0")  # as the bench runs the product
os.environ.setdefault("SECRET_KEY", "deliver-cost-" + "x" * 40)  # nothing is signed here

import django  # noqa: E402
import uvloop  # noqa: E402

django.setup()

from fake_ws import FakeWebSocket  # noqa: E402

from accounts.models import User  # noqa: E402
from chatproject.bus.groups import user_group  # noqa: E402
from gateway.asgi import _socketio_site  # noqa: E402
from gateway.auth import Authenticated  # noqa: E402
from gateway.registry import mounts  # noqa: E402
from gateway.transports.handshake import Handshake  # noqa: E402


def _event(n: int, sender: str, origin: str, chat: str) -> dict:
    return {
        "type": "message.created",
        "origin": origin,  # the sending connection: it has its ack, no echo
        "actor": sender,
        "conversation": {"id": chat, "kind": "direct"},
        "message": {
            "id": f"m{n:021d}",
            "seq": n + 2,
            "rev": n + 2,
            "kind": "text",
            "content": f"{n} hello",
            "sender_id": sender,
            "sender_name": "Sender",
            "client_message_id": f"c{n}",
            "created_at": "2026-12-06T03:00:00.000Z",
            "reply_to": None,
            "attachment": None,
        },
    }


async def _run(pairs: int, messages: int) -> tuple[float, int, int]:
    mount = next(m for m in mounts() if m.transport == "eio4" and m.protocol.endswith(".expresschat"))
    app, hubs = _socketio_site([mount])
    hub = hubs[0]
    sio = hub.transport.sio
    users = [User(public_id=f"u{i:021d}", display_name=f"User {i}") for i in range(2 * pairs)]
    sid_of: dict[int, str] = {}
    received = [0]

    async def connect(sid: str, environ: dict, auth: object = None) -> None:
        index = int(auth["i"])
        handshake = Handshake(auth=auth, headers={}, transport="eio4", remote="127.0.0.1", namespace="/")
        authed = Authenticated(users[index], "s", int(time.time()) + 3600, None, None)
        conn = hub._admit(sid, authed, handshake)
        conn.groups.append(user_group(users[index].public_id))
        await hub.transport.join_local(sid, [user_group(users[index].public_id)])
        sid_of[index] = sid

    def on_text(text: str) -> None:
        if text.startswith('42["receive-personal-message"'):
            received[0] += 1

    sio.on("connect", connect, namespace=mount.namespace)
    clients = [FakeWebSocket(on_text) for _ in range(2 * pairs)]
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
    events = []
    for n in range(messages):
        pair = n % pairs
        sender, receiver = users[2 * pair].public_id, users[2 * pair + 1].public_id
        event = _event(n, sender, sid_of[2 * pair], f"c{pair:021d}")
        events.append((user_group(sender), event, user_group(receiver), copy.deepcopy(event)))
    wanted = 0
    _callgrind("on")
    start = time.process_time()
    for sender_group, event, receiver_group, received_copy in events:
        wanted += hub.wants(sender_group, event)
        await hub.deliver(receiver_group, received_copy)
    spent = time.process_time() - start
    _callgrind("off")
    for client in clients:
        client.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait(tasks, timeout=10)
    return spent, received[0], wanted


def _callgrind(state: str) -> None:
    if os.environ.get("DELIVER_COST_CALLGRIND") == "1":
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = []
    for _ in range(args.rounds):
        spent, received, wanted = uvloop.run(_run(args.pairs, args.messages))
        figures.append(spent / args.messages * 1e6)
        print(
            f"{figures[-1]:.2f} us CPU per message; {received} delivered, sender's copy wanted {wanted}",
            flush=True,
        )
    print(f"median {statistics.median(figures):.2f} us CPU per message")


if __name__ == "__main__":
    main()
