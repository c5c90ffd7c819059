"""CPU per websocket message through an Engine.IO 4 session: python-engineio's own against the
gateway's (gateway/transports/engine.py: LeanSocket with its SendQueue), in-process, no sockets.

A fake websocket hands the session one frame at a time (as uvicorn does) and records what the
session's writer sends; the loop is uvloop's, as in production. The figures include the
harness's own work (the same for both), so compare them, do not read them alone.

    .venv/bin/python bench/engine_cost.py lean     # or: stock
"""

import asyncio
import sys
import time
from pathlib import Path

import engineio
import uvloop
from engineio import packet
from engineio.async_socket import AsyncSocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.transports.engine import EngineServer  # noqa: E402

MESSAGES = 50_000


class FakeWebSocket:
    def __init__(self) -> None:
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent = 0

    async def wait(self):
        return await self.incoming.get()

    async def send(self, data) -> None:
        self.sent += 1

    async def close(self) -> None:
        pass


async def measure(server_class: type) -> tuple[float, float]:
    eio = server_class(async_mode="asgi", ping_interval=25, ping_timeout=20)
    received = [0]

    async def message(sid, data):
        received[0] += 1

    eio.on("message", message)
    ws, sid = FakeWebSocket(), "bench"
    eio.sockets[sid] = AsyncSocket(eio, sid)  # what python-engineio's _handle_connect makes
    await eio._trigger_event("connect", sid, {}, run_async=False)
    session = eio.sockets[sid]
    handler = asyncio.ensure_future(session._websocket_handler(ws))
    await asyncio.sleep(0)
    start = time.process_time()
    for i in range(MESSAGES):  # inbound: one frame at a time
        ws.incoming.put_nowait("4hello")
        while received[0] <= i:  # noqa: ASYNC110 - yield until handled: an Event would be measured too
            await asyncio.sleep(0)
    inbound = time.process_time()
    for i in range(MESSAGES):  # outbound: one packet at a time, sent by the session's writer
        await session.send(packet.Packet(packet.MESSAGE, "hello"))
        while ws.sent <= i:  # noqa: ASYNC110 - as above
            await asyncio.sleep(0)
    outbound = time.process_time()
    ws.incoming.put_nowait(None)
    await handler
    return (inbound - start) / MESSAGES * 1e6, (outbound - inbound) / MESSAGES * 1e6


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "lean"
    server_class = EngineServer if kind == "lean" else engineio.AsyncServer
    inbound, outbound = uvloop.run(measure(server_class))
    print(f"{kind}: inbound {inbound:.2f} us/message, outbound {outbound:.2f} us/message (CPU)")


if __name__ == "__main__":
    main()
