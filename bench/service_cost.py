"""What one `messaging.services.message_send` costs in-process, without sockets or the bus:
wall time, CPU time of the calling thread, and the SQL it runs. Part of scenario 1, so a slow
send can be split into "the service" and "everything around it".

Run by bench/run.py as a Django script on the bench database, pinned to the server core:
    service_cost.py SEED.json CALLS WARMUP OUT.json
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from chatproject.bus import transport as bus  # noqa: E402
from messaging.services import SendRequest, message_send, message_send_many  # noqa: E402


def _batched(user, chat: str, run: str, calls: int, size: int = 50) -> dict | None:
    """The same sends through `message_send_many` (the socket path's batcher), `size` at a time:
    per-message wall and CPU. None when the service does not exist (older trees)."""
    try:
        from messaging.services import SendRequest, message_send_many
    except ImportError:
        return None
    batches = max(calls // size, 1)
    w0, c0 = time.perf_counter(), time.thread_time()
    for b in range(batches):
        message_send_many(
            requests=[
                SendRequest(
                    user=user,
                    conversation_id=chat,
                    content=f"{i} batch probe",
                    client_message_id=f"{run}-b{b}-{i}",
                )
                for i in range(size)
            ]
        )
    wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
    n = batches * size
    return {
        "batch_size": size,
        "messages": n,
        "wall_ms_per_message": round(wall * 1000 / n, 3),
        "cpu_ms_per_message": round(cpu * 1000 / n, 3),
        "max_sends_per_s_one_thread": round(n / wall, 1),
    }


def _send_spread(users: dict, pairs: list[dict], content: str, id_prefix: str) -> None:
    """One batch: a send from each pair's sender into its own chat (client ids `<prefix>-<i>`)."""

    message_send_many(
        requests=[
            SendRequest(
                user=users[p["sender"]],
                conversation_id=p["chat"],
                content=content,
                client_message_id=f"{id_prefix}-{i}",
            )
            for i, p in enumerate(pairs)
        ]
    )


def _batched_spread(pairs: list[dict], run: str, rounds: int = 20) -> dict | None:
    """Batches of one send from each of up to 50 pairs, each into its own direct chat: what the
    socket path's batches hold under load (scenario 1: ~50 senders per batch, each into its own
    conversation), unlike `_batched` (one sender, one conversation). CPU per message of the
    median round (10 batches a round, after 5 warm-up batches)."""
    try:
        from messaging.services import message_send_many  # noqa: F401  (a tree from before batched sends has none)
    except ImportError:
        return None
    pairs = pairs[:50]
    users = {u.public_id: u for u in User.objects.filter(public_id__in=[p["sender"] for p in pairs])}

    def batch(b: int) -> None:
        _send_spread(users, pairs, f"{b} spread probe", f"{run}-s{b}")

    for b in range(5):
        batch(b)
    cpus, walls = [], []
    for r in range(rounds):
        w0, c0 = time.perf_counter(), time.thread_time()
        for b in range(10):
            batch(1000 + r * 10 + b)
        cpus.append((time.thread_time() - c0) * 1e6 / (10 * len(pairs)))
        walls.append((time.perf_counter() - w0) * 1e6 / (10 * len(pairs)))
    return {
        "batch_size": len(pairs),
        "messages": rounds * 10 * len(pairs),
        "cpu_us_per_message_median": round(statistics.median(cpus), 1),
        "wall_us_per_message_median": round(statistics.median(walls), 1),
    }


def _small_batches(pairs: list[dict], run: str, sizes: tuple[int, ...] = (1, 10), batches: int = 200) -> dict:
    """Batches of one send from each of `size` pairs: what the socket path's batches hold at a
    fixed 1,000 msgs/s (few sends per batch, so a batch's fixed cost, its round trips and
    statements, is most of a message's). Per size: median CPU per message, median wall per
    batch (a message's share of the latency: it waits for one whole batch, often two) and
    statements per batch."""
    users = {u.public_id: u for u in User.objects.filter(public_id__in=[p["sender"] for p in pairs])}
    out = {}
    for size in sizes:
        chosen = pairs[:size]

        def batch(b: int, chosen=chosen, size=size) -> None:
            _send_spread(users, chosen, f"{b} small batch probe", f"{run}-k{size}-{b}")

        for b in range(10):
            batch(b)
        cpus, walls = [], []
        for b in range(batches):
            w0, c0 = time.perf_counter(), time.thread_time()
            batch(1000 + b)
            cpus.append((time.thread_time() - c0) * 1e6 / size)
            walls.append((time.perf_counter() - w0) * 1e6)
        with CaptureQueriesContext(connection) as captured:
            batch(10**6)
        out[str(size)] = {
            "cpu_us_per_message_median": round(statistics.median(cpus), 1),
            "wall_us_per_batch_median": round(statistics.median(walls), 1),
            "wall_us_per_batch_p90": round(sorted(walls)[int(len(walls) * 0.9)], 1),
            "statements_per_batch": len(captured.captured_queries),
        }
    return out


def main() -> None:
    seed, calls, warmup, out = (
        json.loads(Path(sys.argv[1]).read_text()),
        int(sys.argv[2]),
        int(sys.argv[3]),
        Path(sys.argv[4]),
    )
    pair = seed["pairs"][-1]
    user = User.objects.get(public_id=pair["sender"])
    published: list = []
    # On commit the service hands the event to the bus; here it is only counted, so the
    # numbers are the service's own (no Redis round trip from a script without a loop).
    bus.send = lambda groups, event: published.append(len(groups))
    run = f"svc{os.getpid()}"

    def send(i: int) -> None:
        message_send(
            user=user,
            conversation_id=pair["chat"],
            content=f"{i} service cost probe",
            client_message_id=f"{run}-{i}",
        )

    for i in range(warmup):
        send(i)
    walls, cpus = [], []
    for i in range(warmup, warmup + calls):
        w0, c0 = time.perf_counter(), time.thread_time()
        send(i)
        cpus.append((time.thread_time() - c0) * 1000)
        walls.append((time.perf_counter() - w0) * 1000)
    with CaptureQueriesContext(connection) as captured:
        send(warmup + calls)
    walls.sort()
    batched = _batched(user, pair["chat"], run, calls)
    spread = _batched_spread(seed["pairs"], run)
    small = _small_batches(seed["pairs"], run)
    out.write_text(
        json.dumps(
            {
                "calls": calls,
                "wall_ms": {
                    "p50": round(walls[len(walls) // 2], 3),
                    "p99": round(walls[int(len(walls) * 0.99)], 3),
                    "mean": round(statistics.fmean(walls), 3),
                },
                "cpu_ms_mean": round(statistics.fmean(cpus), 3),
                "queries_per_send": len(captured.captured_queries),
                "queries": [q["sql"][:160] for q in captured.captured_queries],
                "bus_groups_per_send": published[-1] if published else 0,
                "max_sends_per_s_one_thread": round(1000 / statistics.fmean(walls), 1),
                "batched": batched,
                "batched_spread": spread,
                "small_batches": small,
            }
        )
    )


if __name__ == "__main__":
    main()
