"""uvicorn's websockets-sansio protocol with less held per open websocket.

Measured in the server after the bench's idle ramp (tracemalloc and gc objects per connection),
uvicorn 0.54's `WebSocketsSansIOProtocol` holds, for each websocket: an `asyncio.Queue` of ASGI
events (four deques of 760 bytes on CPython 3.11, empty while the connection is idle), an
`asyncio.Event` for write flow control (a fifth deque), and the parsed upgrade request and the
101 response with their headers (~2.5 KiB), which it reads only while accepting. This subclass
gives it the queue of gateway/transports/send_queue.py (no container while nothing waits), an
event without a deque, and drops the request and response once the websocket is accepted.
Its per-connection INFO lines (uvicorn's `"WebSocket ..." [accepted]`, the websockets library's
"connection open" and "connection closed") are not even made when the server's filter would drop
them (`QuietLog`). Everything else is uvicorn's. Run with `--ws gateway.transports.uvicorn_ws:WebSocketProtocol`
instead of `--ws websockets-sansio` (Makefile `run`, docs/operations.md); the module imports
neither Django nor the rest of the gateway (chatproject.ops.logs imports no Django at import).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from chatproject.ops.logs import PER_CONNECTION_LINES, WebSocketAcceptedFilter

from .send_queue import SendQueue


class QuietLog(logging.LoggerAdapter):
    """uvicorn's error logger as a websocket protocol and its websockets connection use it,
    skipping the per-connection INFO lines outright while the logger's `WebSocketAcceptedFilter`
    is on (uvicorn's access log is off: chatproject/ops/logs.py). The filter drops them too, but
    only after the logger has made each record (`findCaller`, `makeRecord`): three records per
    websocket, for nothing. Every other line goes to the logger as before."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, None)

    @property
    def level(self) -> int:  # uvicorn reads it (`self.logger.level <= TRACE_LOG_LEVEL`)
        return self.logger.level

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if msg in PER_CONNECTION_LINES and any(
            isinstance(f, WebSocketAcceptedFilter) for f in self.logger.filters
        ):
            return
        super().info(msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # no `extra` of the adapter's own


_error_log = QuietLog(logging.getLogger("uvicorn.error"))


class Flag:
    """The part of `asyncio.Event` uvicorn's protocol uses for `writable` (`set`, `clear`,
    `is_set`, `wait`), with its waiters in a list made only while someone waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with the smaller structures above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn uses put_nowait, get and empty; it never calls task_done (nor join): the
        # count of unfinished items only grows, and nothing reads it.
        self.queue = SendQueue()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()
        self.logger = self.conn.logger = _error_log  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message.get("type") == "websocket.accept" and self.handshake_complete:
            # Read only while accepting (the response's headers get the app's and uvicorn's).
            self.request = self.response = None  # type: ignore[assignment]
