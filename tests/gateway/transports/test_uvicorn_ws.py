"""uvicorn's websockets-sansio protocol with smaller structures (gateway/transports/uvicorn_ws.py):
its write flag behaves like the `asyncio.Event` it replaces, and a websocket served through it
is accepted, echoes and closes as under uvicorn's own, without keeping the upgrade request and
response. Every live test runs the servers with it (tests/conftest.py, as `make run`)."""

import asyncio
import logging

import websockets
from uvicorn import Config, Server

from chatproject.ops.logs import WEBSOCKET_ACCEPTED, WebSocketAcceptedFilter
from gateway.transports.uvicorn_ws import Flag, QuietLog, WebSocketProtocol


async def test_flag_wakes_every_waiter_when_set_and_not_when_cleared():
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    flag.clear()
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True]
    assert flag.is_set() and await flag.wait()
    assert flag._waiters is None


async def test_a_cancelled_wait_leaves_no_waiter():
    flag = Flag()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    assert flag._waiters is None
    flag.set()


async def test_a_websocket_is_accepted_echoes_and_closes_without_keeping_its_upgrade():
    protocols: list[WebSocketProtocol] = []

    async def app(scope, receive, send):
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message["text"].upper()})

    class Recorded(WebSocketProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            protocols.append(self)

    config = Config(app, host="127.0.0.1", port=0, ws=Recorded, lifespan="off", log_level="warning")
    server = Server(config)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            for text in ("one", "two"):
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), 5) == text.upper()
            (protocol,) = protocols
            assert protocol.request is None and protocol.response is None
            assert isinstance(protocol.logger, QuietLog) and protocol.conn.logger is protocol.logger
            assert protocol.queue.empty()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


class _Made(logging.Filter):
    """Counts the records a logger made (a logger's filters see every record it makes)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return True


def test_per_connection_lines_are_not_made_while_the_server_drops_them():
    """With uvicorn's access log off (the product's filter on "uvicorn.error"), the
    per-connection INFO lines are skipped before a record is made; every other line, and all of
    them with the access log on, reach the logger as before."""
    logger = logging.getLogger("uvicorn.error")
    quiet = QuietLog(logger)
    made, level = _Made(), logger.level
    logger.setLevel(logging.INFO)
    logger.addFilter(made)
    try:
        for access_log in ("off", "on"):
            dropping = WebSocketAcceptedFilter()
            if access_log == "off":
                logger.addFilter(dropping)
            made.messages.clear()
            quiet.info(WEBSOCKET_ACCEPTED, "127.0.0.1:5000", "/socket.io/?EIO=4")
            quiet.info("connection open")
            quiet.info("connection closed")
            quiet.info("connection rejected (%d %s)", 503, "Service Unavailable")
            quiet.warning("something uvicorn warns about")
            assert quiet.level == logging.INFO and quiet.isEnabledFor(logging.INFO)
            per_connection = ['127.0.0.1:5000 - "WebSocket /socket.io/?EIO=4" [accepted]', "connection open"]
            others = ["connection rejected (503 Service Unavailable)", "something uvicorn warns about"]
            if access_log == "off":
                assert made.messages == others
                logger.removeFilter(dropping)
            else:
                assert made.messages == [*per_connection, "connection closed", *others]
    finally:
        logger.removeFilter(made)
        logger.setLevel(level)
