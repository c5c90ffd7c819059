"""The event loop's CPU per Engine.IO 4 handshake, in-process: the product's ASGI application
(gateway, python-engineio, python-socketio, the hub, the bus on Redis, presence, the read threads
on PostgreSQL) driven by fake websockets, without uvicorn or the kernel's sockets. Each fake
client does what the bench's socket.io-client does on the websocket transport: it waits for
Engine.IO's OPEN, sends the namespace CONNECT with its token, and counts as greeted when the
last greeting event (ExpressChat's `group-chat-list`) arrives. CONCURRENCY handshakes in
flight, every connection held until the round ends, then all closed.

Reports, per handshake, the CPU time of the event loop's thread (`time.thread_time`) and of the
whole process, median over ROUNDS rounds of USERS handshakes, and the cyclic garbage collector's
collections in each round (full ones, and the CPU all of them took). With HOLD=1 every round's
connections stay open until the end (round r runs with r x USERS connections held, as the bench's
idle ramp does), else each round closes its own. CPU time of a thread moves far
less with the machine's load than the bench's connects/s; used to A/B the handshake's loop work
(issue 19).

    DATABASE_URL=... REDIS_URL=... SECRET_KEY=... [HOLD=1] .venv/bin/python bench/handshake_loop_cost.py [USERS] [ROUNDS]

Uses the `bidle*` users of the idle scenario (bench/seed.py), seeding them if there are fewer.
"""

import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("CHANNEL_PREFIX", f"hsloop{os.getpid()}")
# As the bench runs the product: one address for every client, so the per-address cap is lifted.
os.environ.setdefault("CHAT_SOCKET_MAX_PER_ADDRESS", "1000000")

import uvloop  # noqa: E402

CONCURRENCY = 100
LAST_GREETING = '42["group-chat-list"'
HOLD = os.environ.get("HOLD") == "1"


class Collections:
    """The cyclic collector's runs since the last `take`, by generation: how many, and the CPU
    time they took (`gc.callbacks`, in the thread that collected)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.thread_time()
            return
        self.seconds[info["generation"]] += time.thread_time() - self._began
        self.counts[info["generation"]] += 1

    def take(self) -> str:
        taken = ", ".join(
            f"{n} of generation {g} {s * 1000:.0f} ms"
            for g, (n, s) in enumerate(zip(self.counts, self.seconds, strict=True))
        )
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        return taken


class FakeClient:
    """One websocket as the ASGI application sees it."""

    def __init__(self, app, token: str, port: int) -> None:
        self.app = app
        self.token = token
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.greeted = asyncio.get_running_loop().create_future()
        self.scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": "/socket.io/",
            "raw_path": b"/socket.io/",
            "root_path": "",
            "query_string": b"EIO=4&transport=websocket",
            "headers": [(b"host", b"127.0.0.1"), (b"connection", b"Upgrade"), (b"upgrade", b"websocket")],
            "client": ("127.0.0.1", port),
            "server": ("127.0.0.1", 8000),
            "subprotocols": [],
            "state": {},
            "extensions": {"websocket.http.response": {}},
        }
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.get_running_loop().create_task(self.app(self.scope, self.receive, self.send))

    async def receive(self) -> dict:
        return await self.incoming.get()

    async def send(self, message: dict) -> None:
        text = message.get("text")
        if text is None:
            if message["type"] == "websocket.close" and not self.greeted.done():
                self.greeted.set_exception(RuntimeError(f"closed: {message}"))
            return
        if text[:1] == "0":  # Engine.IO OPEN: the namespace CONNECT with the token
            payload = json.dumps({"token": self.token})
            self.incoming.put_nowait({"type": "websocket.receive", "text": f"40{payload}"})
        elif text.startswith(LAST_GREETING) and not self.greeted.done():
            self.greeted.set_result(None)
        elif text[:2] == "44" and not self.greeted.done():
            self.greeted.set_exception(RuntimeError(f"refused: {text[:200]}"))

    async def close(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 10)


async def _lifespan(app) -> asyncio.Task:
    inbox: asyncio.Queue = asyncio.Queue()
    started = asyncio.get_running_loop().create_future()

    async def send(message):
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message")))

    inbox.put_nowait({"type": "lifespan.startup"})
    task = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await started
    return task  # held by the caller for the whole run


async def _round(app, tokens: list[str], held: list | None = None) -> tuple[float, float, float]:
    """One round of handshakes; its clients are closed at its end, or added to `held`."""
    sem = asyncio.Semaphore(CONCURRENCY)
    clients = []
    port = 10000 + (len(held) if held is not None else 0)

    async def one(i: int, token: str) -> None:
        async with sem:
            client = FakeClient(app, token, port + i)
            clients.append(client)
            await asyncio.wait_for(client.greeted, 30)

    loop0, all0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
    loop1, all1, wall1 = time.thread_time(), time.process_time(), time.perf_counter()
    n = len(tokens)
    if held is not None:
        held.extend(clients)
    else:
        await asyncio.gather(*(client.close() for client in clients))
    await asyncio.sleep(1.0)  # presence and unsubscribes settle before the next round
    return (loop1 - loop0) / n * 1000, (all1 - all0) / n * 1000, n / (wall1 - wall0)


async def _main(users: int, rounds: int) -> None:
    from seed import idle_tokens  # bench/seed.py

    from chatproject.asgi import application

    tokens = await asyncio.to_thread(idle_tokens, users)
    lifespan = await _lifespan(application)
    await _round(application, tokens[: min(200, users)])  # warm-up
    collections = Collections()
    held: list | None = [] if HOLD else None
    loop_ms, all_ms = [], []
    for r in range(rounds):
        collections.take()
        loop, total, rate = await _round(application, tokens, held)
        collected = collections.take()
        loop_ms.append(loop)
        all_ms.append(total)
        print(
            f"round {r}: loop {loop:.3f} ms, process {total:.3f} ms per handshake ({rate:.0f}/s); "
            f"collections: {collected}",
            flush=True,
        )
    if held:
        await asyncio.gather(*(client.close() for client in held))
    print(
        f"median per handshake: loop {statistics.median(loop_ms):.3f} ms, "
        f"process {statistics.median(all_ms):.3f} ms ({users} handshakes x {rounds} rounds)"
    )
    lifespan.cancel()


def main() -> None:
    import django

    django.setup()
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    uvloop.run(_main(users, rounds))


if __name__ == "__main__":
    main()
