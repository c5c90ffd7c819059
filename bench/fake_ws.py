"""A websocket as the server's ASGI app sees it, for the in-process cost tools
(`direct_cost.py`, `fanout_cost.py`): what the app sends is framed the way uvicorn's websockets
protocol frames it (the write itself left out), then handed to `on_text`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.protocol import State
from websockets.server import ServerProtocol


class FakeWebSocket:
    def __init__(self, on_text: Callable[[str], None]) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.frames = ServerProtocol()
        self.frames.state = State.OPEN
        self.on_text = on_text
        self.connected = asyncio.Event()  # set by the namespace's CONNECT answer ("40...")

    async def receive(self) -> dict:
        return await self.inbox.get()

    async def send(self, message: dict) -> None:
        if message["type"] != "websocket.send":
            return
        text = message.get("text")
        if text is None:
            return
        self.frames.send_text(text.encode())  # what uvicorn does per message, but the write
        self.frames.data_to_send()
        if text.startswith("40"):
            self.connected.set()
        self.on_text(text)

    def emit(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})
