"""Direct messages in-process: CPU per message of the whole server path, split into the event
loop's thread and the others (the database thread), with the real database and bus (issue 19).

The product's ASGI application (`chatproject.asgi.application`, lifespan startup included) serves
`--pairs` sender/receiver pairs of in-process websocket clients on the ExpressChat namespace:
each client authenticates with a real access token (`40{"token": ...}`), each sender keeps
`--window` `send-personal-message` events with acks in flight (closed loop, as the bench's
saturation step), each receiver counts its `receive-personal-message` events. A client's `send`
does what uvicorn's websockets-sansio protocol does per message before the socket write (a
websockets `ServerProtocol` frames the text), so the figure is what the server's event loop does
per message except the socket system calls, plus the harness's own small share (the same for
every tree: compare runs, do not read one alone). `time.thread_time` in the event loop's thread
and `time.process_time` for the process, over `--messages` acked and delivered messages after a
warm-up.

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; a scratch database: it seeds users):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hloop REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/direct_cost.py [--pairs 100] [--window 10] [--messages 20000] [--rounds 3]

On a machine others load, CPU time per message moves by +-15% between runs of the same tree.
Instruction counts move much less: under callgrind, counting only the measured messages, one
pair sending one message at a time (every message takes the same path; batches of one), and two
trees run side by side (bench/README.md, issue 19 session 3):

    DIRECT_COST_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes \\
        .venv/bin/python bench/direct_cost.py --pairs 1 --window 1 --warmup 100 --messages 1000 --rounds 1

then `totals:` of callgrind.out.<pid>-01 (the event loop's thread) / 1000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
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
os.environ.setdefault("SECRET_KEY", "direct-cost-" + "x" * 40)
os.environ.setdefault("CHANNEL_PREFIX", f"dcost{os.getpid()}")
os.environ.setdefault("LOG_LEVEL", "WARNING")
for _knob in ("SOCKET_RATE_BURST", "SOCKET_RATE_PER_SECOND", "USER_RATE_BURST", "USER_RATE_PER_SECOND"):
    os.environ.setdefault(f"CHAT_{_knob}", "1000000")  # lifted, as the bench does

import django  # noqa: E402
import uvloop  # noqa: E402

django.setup()

from fake_ws import FakeWebSocket  # noqa: E402

RUN = f"{os.getpid()}-{int(time.time())}"  # client message ids are never reused across runs
SCOPE = {
    "type": "websocket",
    "path": "/socket.io/",
    "query_string": b"EIO=4&transport=websocket",
    "headers": [(b"host", b"bench"), (b"upgrade", b"websocket"), (b"connection", b"upgrade")],
    "client": ("127.0.0.1", 1),
    "extensions": {},
}


class Pair:
    def __init__(self, index: int, chat: str, tally: Tally) -> None:
        self.index, self.chat, self.tally = index, chat, tally
        self.sent = 0
        self.next_ack = 0
        self.received: list[int] = []
        self.sender = FakeWebSocket(self.on_sender_text)
        self.receiver = FakeWebSocket(self.on_receiver_text)

    def pump(self, window: int) -> None:
        while self.sent - self.next_ack < window and self.tally.sending:
            n = self.sent
            self.sent += 1
            self.sender.emit(
                f'42{n}["send-personal-message",{{"ChatId":"{self.chat}","Content":"{n} hello",'
                f'"ClientMessageId":"{RUN}-{self.tally.round}-{n}"}}]'
            )

    def on_sender_text(self, text: str) -> None:
        if not text.startswith("43"):
            return
        body = text.index("[")
        n = int(text[2:body])
        if n != self.next_ack or not text.startswith('[{"ok":true', body):
            self.tally.errors += 1
        self.next_ack = n + 1
        self.tally.acked += 1
        self.pump(self.tally.window)

    def on_receiver_text(self, text: str) -> None:
        if not text.startswith('42["receive-personal-message"'):
            return
        start = text.index('"Content":"') + 11  # the harness's own content: "<n> hello"
        self.received.append(int(text[start : text.index(" ", start)]))
        self.tally.delivered += 1
        if self.tally.delivered >= self.tally.target:
            self.tally.reached.set()


class Tally:
    def __init__(self, window: int) -> None:
        self.window = window
        self.sending = True
        self.acked = self.delivered = self.errors = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.round = 0

    def expect(self, target: int) -> asyncio.Event:
        self.target = target
        self.reached.clear()
        if self.delivered >= target:
            self.reached.set()
        return self.reached


async def _run(seed: dict, pairs: int, window: int, warmup: int, messages: int, round_: int) -> dict:
    from chatproject.asgi import application

    lifespan: asyncio.Queue = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    lifespan.put_nowait({"type": "lifespan.startup"})
    life = asyncio.create_task(application({"type": "lifespan"}, lifespan.get, lifespan_send))
    await asyncio.wait_for(started.wait(), 30)
    tally = Tally(window)
    tally.round = round_
    group = [Pair(i, p["chat"], tally) for i, p in enumerate(seed["pairs"][:pairs])]
    tasks = []
    for pair, spec in zip(group, seed["pairs"], strict=False):
        for client, token in ((pair.receiver, spec["receiver_token"]), (pair.sender, spec["sender_token"])):
            client.inbox.put_nowait({"type": "websocket.connect"})
            client.emit("40" + json.dumps({"token": token}))
            tasks.append(asyncio.create_task(application(dict(SCOPE), client.receive, client.send)))
    clients = [c for pair in group for c in (pair.receiver, pair.sender)]
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 60)
    await asyncio.sleep(0.5)  # greetings out, presence settled
    for pair in group:
        pair.pump(window)
    await asyncio.wait_for(tally.expect(warmup).wait(), 120)
    _callgrind("on")
    _cprofile("on")
    loop0, proc0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    usage0 = resource.getrusage(resource.RUSAGE_THREAD)
    delivered0 = tally.delivered
    await asyncio.wait_for(tally.expect(warmup + messages).wait(), 300)
    loop_cpu, proc_cpu = time.thread_time() - loop0, time.process_time() - proc0
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    wall = time.perf_counter() - wall0
    _callgrind("off")
    _cprofile("off")
    counted = tally.delivered - delivered0
    tally.sending = False
    while any(p.next_ack < p.sent for p in group) or tally.delivered < tally.acked:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    lost = dup = reordered = 0
    for pair in group:
        seen = pair.received
        if len(set(seen)) != len(seen):
            dup += len(seen) - len(set(seen))
        if seen != sorted(seen):
            reordered += 1
        lost += pair.sent - len(set(seen))
    for client in clients:
        client.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait(tasks, timeout=10)
    lifespan.put_nowait({"type": "lifespan.shutdown"})
    await asyncio.wait_for(life, 10)
    return {
        "loop_us": loop_cpu / counted * 1e6,
        "threads_us": (proc_cpu - loop_cpu) / counted * 1e6,
        "loop_sys_us": (usage.ru_stime - usage0.ru_stime) / counted * 1e6,
        "loop_switches": (usage.ru_nvcsw - usage0.ru_nvcsw) / counted,
        "loop_preempted": (usage.ru_nivcsw - usage0.ru_nivcsw) / counted,
        "msgs_per_s": counted / wall,
        "lost": lost,
        "duplicated": dup,
        "reordered_pairs": reordered,
        "ack_errors": tally.errors,
    }


_profiler = None


def _cprofile(state: str) -> None:
    """With DIRECT_COST_CPROFILE=<path>: cProfile of the measured messages, written to <path>
    (call counts per message are exact; compare the trees' `ncalls`, not their times)."""
    global _profiler
    path = os.environ.get("DIRECT_COST_CPROFILE")
    if not path:
        return
    if state == "on":
        import cProfile

        _profiler = cProfile.Profile()
        _profiler.enable()
    elif _profiler is not None:
        _profiler.disable()
        _profiler.dump_stats(path)
        _profiler = None


def _callgrind(state: str) -> None:
    """Under `valgrind --tool=callgrind --instr-atstart=no` (DIRECT_COST_CALLGRIND=1): count
    instructions during the measured messages only (steadier than CPU time on a busy
    machine)."""
    if os.environ.get("DIRECT_COST_CALLGRIND") == "1":
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def _seed(pairs: int) -> dict:
    from seed import seed_direct

    return seed_direct(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seed = _seed(args.pairs)
    rows = []
    for round_ in range(args.rounds):
        result = uvloop.run(_run(seed, args.pairs, args.window, args.warmup, args.messages, round_))
        rows.append(result)
        print(
            f"loop {result['loop_us']:.1f} us/msg (system {result['loop_sys_us']:.1f}, "
            f"{result['loop_switches']:.2f} waits and {result['loop_preempted']:.2f} preemptions), threads {result['threads_us']:.1f} us/msg, "
            f"{result['msgs_per_s']:.0f} msgs/s; lost {result['lost']} dup {result['duplicated']} "
            f"reordered pairs {result['reordered_pairs']} ack errors {result['ack_errors']}",
            flush=True,
        )
    print(
        f"median: loop {statistics.median(r['loop_us'] for r in rows):.1f} us/msg, "
        f"threads {statistics.median(r['threads_us'] for r in rows):.1f} us/msg"
    )


if __name__ == "__main__":
    main()
