"""Engine.IO 4 MESSAGE packets go straight to the server's message handler
(`DirectSocket.receive`, gateway/transports/direct_socket.py), as python-engineio's
`_trigger_event("message", ...)` would call it; everything else goes python-engineio's way. The
live tests of every Engine.IO 4 protocol run the same code with real clients."""

import asyncio
import logging

import pytest
from engineio import packet

from gateway.transports.direct_socket import DirectEngineServer, DirectSocket


@pytest.fixture
def engine():
    eio = DirectEngineServer(
        async_mode="asgi", logger=False, async_handlers=False
    )  # as python-socketio makes it
    triggered: list = []
    real_trigger = eio._trigger_event

    async def trigger(event, *args, **kwargs):
        triggered.append(event)
        return await real_trigger(event, *args, **kwargs)

    eio._trigger_event = trigger
    socket = DirectSocket(eio, "s1")
    eio.sockets["s1"] = socket
    return eio, socket, triggered


async def test_a_message_goes_straight_to_the_message_handler(engine):
    eio, socket, triggered = engine
    got = []

    async def message(sid, data):
        got.append((sid, data))

    eio.on("message", message)
    await socket.receive(packet.Packet(packet.MESSAGE, '2["x",{"a":1}]'))
    await socket.receive(packet.Packet(packet.MESSAGE, b"\x01\x02"))
    assert got == [("s1", '2["x",{"a":1}]'), ("s1", b"\x01\x02")]
    assert triggered == []  # python-engineio's dispatch was not needed


async def test_a_handlers_error_is_logged_as_python_engineio_logs_it_and_the_session_goes_on(engine, caplog):
    eio, socket, _ = engine
    got = []

    async def message(sid, data):
        if data == "boom":
            raise KeyError("boom")
        if data == "cancel":
            raise asyncio.CancelledError
        got.append(data)

    eio.on("message", message)
    eio.logger.setLevel(logging.ERROR)
    with caplog.at_level(logging.ERROR, logger=eio.logger.name):
        await socket.receive(packet.Packet(packet.MESSAGE, "boom"))
        await socket.receive(packet.Packet(packet.MESSAGE, "cancel"))
        await socket.receive(packet.Packet(packet.MESSAGE, "after"))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["message async handler error"]
    assert errors[0].exc_info[0] is KeyError
    assert got == ["after"]


async def test_other_packets_and_other_handlers_go_python_engineios_way(engine):
    eio, socket, triggered = engine
    got = []

    def sync_message(sid, data):  # a sync handler: python-engineio calls it
        got.append(("sync", data))

    eio.on("message", sync_message)
    await socket.receive(packet.Packet(packet.MESSAGE, "one"))
    assert got == [("sync", "one")] and triggered == ["message"]

    async def message(sid, data):
        got.append(("async", data))

    eio.on("message", message)
    eio.async_handlers = True  # python-engineio starts a task per message then
    await socket.receive(packet.Packet(packet.MESSAGE, "two"))
    await asyncio.sleep(0)
    assert got[-1] == ("async", "two") and triggered == ["message", "message"]
    eio.async_handlers = False

    eio.logger.setLevel(logging.INFO)  # python-engineio logs every packet: its way
    try:
        await socket.receive(packet.Packet(packet.MESSAGE, "three"))
    finally:
        eio.logger.setLevel(logging.ERROR)
    assert got[-1] == ("async", "three") and triggered == ["message"] * 3

    socket.last_ping = 1.0  # a PONG schedules the next ping: python-engineio's own handling
    await socket.receive(packet.Packet(packet.PONG))
    assert socket.last_ping is None and socket._ping_timer is not None
    socket._ping_timer.cancel()
    assert triggered == ["message"] * 3


async def test_a_message_with_no_handler_is_dropped(engine):
    eio, socket, triggered = engine
    await socket.receive(packet.Packet(packet.MESSAGE, "nobody"))
    assert triggered == ["message"]  # python-engineio's way: no handler, nothing happens
