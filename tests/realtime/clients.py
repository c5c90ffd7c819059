"""A python-socketio AsyncClient and a /ws/ client that record every event they receive."""

import asyncio
import json
from collections import defaultdict
from typing import Any

import socketio
import websockets


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.queues: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)

    def record(self, name: str, data: Any) -> None:
        self.log.append((name, data))
        self.queues[name].put_nowait(data)

    async def next(self, name: str, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.queues[name].get(), timeout)

    async def none(self, name: str, wait: float = 0.5) -> None:
        """Assert that no `name` event arrives within `wait` seconds."""
        await asyncio.sleep(wait)
        assert self.queues[name].empty(), f"unexpected {name}: {self.queues[name].get_nowait()}"

    def names(self) -> list[str]:
        return [name for name, _ in self.log]


class SioClient(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("connect", lambda: self.record("connect", None))
        self.sio.on("disconnect", lambda *reason: self.record("disconnect", reason[0] if reason else None))

        @self.sio.on("*")
        async def any_event(event, *args):
            self.record(event, args[0] if args else None)

    async def connect(
        self,
        url: str,
        *,
        token: str | None = None,
        headers: dict | None = None,
        transports: list[str] | None = None,
        query: str = "",
    ) -> "SioClient":
        await self.sio.connect(
            url + (f"?{query}" if query else ""),
            auth={"token": token} if token else None,
            headers=headers or {},
            transports=transports or ["websocket"],
            wait_timeout=5,
        )
        return self

    async def call(self, event: str, data: Any = None, timeout: float = 5.0) -> Any:
        return await self.sio.call(event, data, timeout=timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data)

    async def close(self) -> None:
        await self.sio.disconnect()


class WsClient(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.ws = None
        self.acks: dict[int, asyncio.Future] = {}
        self._next_ack = 0
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def connect(self, url: str, *, headers: dict | None = None) -> "WsClient":
        ws_url = url.replace("http://", "ws://") + "/ws/"
        self.ws = await websockets.connect(ws_url, additional_headers=headers or {})
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("event") == "ack" and frame.get("ack") in self.acks:
                    self.acks.pop(frame["ack"]).set_result(frame["data"])
                else:
                    self.record(frame["event"], frame.get("data"))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def call(self, event: str, data: Any = None, timeout: float = 5.0) -> Any:
        self._next_ack += 1
        future = asyncio.get_running_loop().create_future()
        self.acks[self._next_ack] = future
        await self.ws.send(json.dumps({"event": event, "data": data, "ack": self._next_ack}))
        return await asyncio.wait_for(future, timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.ws.send(json.dumps({"event": event, "data": data}))

    async def close(self) -> None:
        await self.ws.close()
        if self._reader:
            await self._reader


async def connect_greeted(server, chat_user, *, extensions: bool = False) -> SioClient:
    """A Socket.IO client of `chat_user`, connected with its access token, past the greeting
    (the group list is its last event). `extensions`: opted in to group system messages, as a
    client that follows `Rev` must be (docs/protocol.md §16)."""
    client = await SioClient().connect(
        server.url, token=chat_user.access, query="extensions=1" if extensions else ""
    )
    await client.next("group-chat-list")
    return client


def ok(ack) -> dict:
    """The data of a successful ack (fails the test with the ack otherwise)."""
    assert ack["ok"], ack
    return ack["data"]


async def expresschat(server, chat_user) -> SioClient:
    """A python-socketio client of the ExpressChat namespace, connected and greeted."""
    client = await SioClient().connect(server.url, token=chat_user.access)
    await client.next("group-chat-list")
    return client
