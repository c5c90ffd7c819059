"""The bus's round of one message at a time, in-process: the event loop's CPU per message from
`bus.send` on the event loop (as the send batch's loop driver publishes) through the flush to
Redis and back, to the bridge's `receive` of the process channel (issue 19, session 6).

At a low rate each send batch holds one or a few messages: every message pays a whole flush (a
task, a script call to Redis) and a whole wake-up of the receive side. This tool measures that
case alone, without the gateway, the database or the sockets: a receiver's user group is
subscribed by the process's channel (the product's `BatchingPubSubChannelLayer`, Redis at
REDIS_URL), and each message is published only once the previous one was received.

    REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/bus_hop_cost.py [--messages 5000]
    PYTHONHASHSEED=0 BUS_HOP_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        .venv/bin/python bench/bus_hop_cost.py --messages 2000 --rounds 1

then `totals:` of callgrind.out.<pid> / 2000 (the instructions of the measured messages: the
publisher and the receive task are both on the event loop's thread).
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bus-hop-cost-" + "x" * 40)
os.environ.setdefault("CHANNEL_PREFIX", f"bushop{os.getpid()}")

import django  # noqa: E402
import uvloop  # noqa: E402

django.setup()

from channels.layers import get_channel_layer  # noqa: E402

from chatproject.bus import transport as bus  # noqa: E402
from chatproject.bus.groups import user_group  # noqa: E402


def _event(n: int) -> dict:
    # The shape and size of a direct message's event (bench/deliver_cost.py's).
    return {
        "type": "message.created",
        "origin": "c" * 20,
        "actor": "u" * 22,
        "conversation": {"id": "k" * 22, "kind": "direct"},
        "message": {
            "id": "m" * 22,
            "seq": n,
            "sender": {"id": "u" * 22, "username": "sender", "display_name": "Sender"},
            "content": f"{n} hello",
            "sent_at": "2026-12-06T12:00:00.000000Z",
            "client_message_id": f"bus-hop-{n}",
        },
    }


async def _run(messages: int, warmup: int) -> dict:
    bus.bind_loop(asyncio.get_running_loop())
    layer = get_channel_layer()
    receive = layer._get_layer().receive
    channel = await layer.new_channel("chatproc.")
    group = user_group("receiver")
    await layer.group_add(group, channel)
    await asyncio.sleep(0.2)  # subscribed
    events = [_event(n) for n in range(warmup + messages)]
    for event in events[:warmup]:
        bus.send([group], event)
        await receive(channel)
    _callgrind("on")
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for event in events[warmup:]:
        bus.send([group], event)
        message = await receive(channel)
        assert message["event"]["message"]["seq"] == event["message"]["seq"]
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    _callgrind("off")
    await layer.group_discard(group, channel)
    bus.bind_loop(None)
    await layer.flush()
    return {
        "loop_us": cpu / messages * 1e6,
        "wall_us": wall / messages * 1e6,
        "errors": bus.stats["publish_errors"],
    }


def _callgrind(state: str) -> None:
    if os.environ.get("BUS_HOP_CALLGRIND") == "1":
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for _ in range(args.rounds):
        row = uvloop.run(_run(args.messages, args.warmup))
        rows.append(row)
        print(
            f"loop {row['loop_us']:.1f} us/msg, wall {row['wall_us']:.1f} us/msg, publish errors {row['errors']}",
            flush=True,
        )
    print(f"median: loop {statistics.median(r['loop_us'] for r in rows):.1f} us/msg")


if __name__ == "__main__":
    main()
