"""What a first-party handshake's database work costs in-process, without sockets or the bus:
its one read, `connection_open` (the session with its user, then the greeting's conversation
list), as the gateway runs it in a read thread (`gateway.sync.settled`, with its connection
housekeeping), after the token's claims were checked on the event loop. Reports CPU time of the
calling thread and wall time per handshake, and the SQL statements of one handshake. Used to
A/B the handshake's query code (issue 19).

    DATABASE_URL=... .venv/bin/python bench/handshake_cost.py [USERS] [ROUNDS] [loop]

`loop`: the same read as the event loop runs it (gateway/reader.py, CHAT HANDSHAKE_READ_ON_LOOP),
one read at a time on one asynchronous connection, its CPU time the loop thread's; and the CPU
of the PostgreSQL backend that served it (/proc: PostgreSQL on this machine).

Runs on whatever database DATABASE_URL names (the bench database after an idle run); seeds
USERS (default 200) users the way the idle scenario does if it has fewer live sessions.
"""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from gateway.auth import Credentials, _claims, connection_open  # noqa: E402
from gateway.sync import settled  # noqa: E402


def _handshake(token: str) -> None:
    credentials = Credentials(token, None, renewable=False)
    settled(connection_open, credentials=credentials, claims=_claims(credentials))


async def _on_loop(tokens: list[str], rounds: int) -> None:
    from gateway import reader
    from gateway.auth import GREETING_KINDS

    async def one(token: str) -> None:
        await reader.connection_open(
            claims=_claims(Credentials(token, None, renewable=False)), kinds=GREETING_KINDS
        )

    for token in tokens[:50]:  # warm-up
        await one(token)
    (connection,) = reader.reader._idle  # one read at a time: one connection
    backend = (await (await connection.execute("SELECT pg_backend_pid()")).fetchone())[0]
    cpu, wall, server = [], [], []
    for _ in range(rounds):
        w0, c0, s0 = time.perf_counter(), time.thread_time(), _backend_cpu(backend)
        for token in tokens:
            await one(token)
        cpu.append((time.thread_time() - c0) / len(tokens) * 1000)
        wall.append((time.perf_counter() - w0) / len(tokens) * 1000)
        server.append((_backend_cpu(backend) - s0) / len(tokens) * 1000)
    print(
        f"on the loop: CPU per handshake (ms): median {statistics.median(cpu):.3f}, rounds {[round(c, 3) for c in cpu]}"
    )
    print(f"PostgreSQL backend CPU per handshake (ms): median {statistics.median(server):.3f}")
    print(f"wall per handshake (ms): median {statistics.median(wall):.3f}")


def _backend_cpu(pid: int) -> float:
    """A PostgreSQL backend's CPU seconds (PostgreSQL on this machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    from seed import idle_tokens  # bench/seed.py: the idle scenario's users

    tokens = idle_tokens(users)
    if sys.argv[3:] == ["loop"]:
        import uvloop

        uvloop.run(_on_loop(tokens, rounds))
        return
    for token in tokens[:50]:  # warm-up
        _handshake(token)
    with CaptureQueriesContext(connection) as queries:
        _handshake(tokens[0])
    cpu, wall = [], []
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.thread_time()
        for token in tokens:
            _handshake(token)
        cpu.append((time.thread_time() - c0) / len(tokens) * 1000)
        wall.append((time.perf_counter() - w0) / len(tokens) * 1000)
    print(f"{len(queries.captured_queries)} queries per handshake:")
    for query in queries.captured_queries:
        print("  ", query["sql"][:160])
    print(f"CPU per handshake (ms): median {statistics.median(cpu):.3f}, rounds {[round(c, 3) for c in cpu]}")
    print(f"wall per handshake (ms): median {statistics.median(wall):.3f}")


if __name__ == "__main__":
    main()
