"""A send batch's cost by size, through the two steps or the one statement (CHAT
SEND_ONE_STATEMENT; issue 19, session 8): `message_send_many` on this thread's Django connection
in autocommit (the sync driver, the same steps and statements as the event-loop driver), each
batch `--size` sends from different pairs into their direct chats. Per batch: wall, this
process's CPU and the PostgreSQL backend's CPU (/proc/<pid>/stat of the connection's backend:
PostgreSQL must run on this machine), the two modes alternating `--rounds` times.

Needs PostgreSQL (DATABASE_URL, a scratch database: it migrates it and seeds pairs):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hsend .venv/bin/python bench/send_statements.py \\
        [--sizes 1,2,10,50,200] [--batches 200] [--rounds 2]

The bus is the in-memory layer (no REDIS_URL): the events are built and handed to it in both
modes alike. Backend CPU is read in clock ticks (10 ms): take at least 200 batches a figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "send-statements-" + "x" * 40)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from messaging import services  # noqa: E402


def backend_cpu(pid: int) -> float:
    """utime + stime of a local process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pairs: list[tuple[User, str]], size: int, batches: int, pid: int, one: bool) -> tuple[float, ...]:
    settings.CHAT = {**settings.CHAT, "SEND_ONE_STATEMENT": one}
    chosen = pairs[:size]
    wall0, cpu0, backend0 = time.perf_counter(), time.process_time(), backend_cpu(pid)
    for b in range(batches):
        requests = [services.SendRequest(user, chat, f"m{b}", client_message_id=f"{one}-{size}-{b}") for user, chat in chosen]
        results = services.message_send_many(requests=requests)
        if not all(result.created for result in results):
            raise SystemExit(f"a send was not stored: {[r.error for r in results if not r.created]}")
    return (
        (time.perf_counter() - wall0) / batches * 1e3,
        (time.process_time() - cpu0) / batches * 1e6,
        (backend_cpu(pid) - backend0) / batches * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,2,10,50,200")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("PostgreSQL only (DATABASE_URL)")
    sizes = [int(size) for size in args.sizes.split(",")]
    call_command("migrate", verbosity=0)
    from seed import seed_direct

    seeded = seed_direct(max(sizes))["pairs"]
    by_public_id = {u.public_id: u for u in User.objects.filter(public_id__in=[p["sender"] for p in seeded])}
    pairs = [(by_public_id[p["sender"]], p["chat"]) for p in seeded]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    measure(pairs, 1, 20, pid, True)  # warm-up: prepared statements, caches
    measure(pairs, 1, 20, pid, False)
    print("size  mode           wall ms/batch  client CPU us  backend CPU us")
    for size in sizes:
        for _round in range(args.rounds):
            for one in (False, True):
                wall, client, backend = measure(pairs, size, args.batches, pid, one)
                mode = "one statement" if one else "two steps"
                print(f"{size:4}  {mode:13}  {wall:13.3f}  {client:13.0f}  {backend:14.0f}", flush=True)


if __name__ == "__main__":
    main()
