"""Binary packets on the Engine.IO 4 transport (GatewayServer), driven in-process below
python-engineio: what is held while attachments are due, and when the session is closed. The live
tests (tests/gateway/test_binary_live.py, test_limits_live.py) run the same code with real
clients; these see inside (what is held, that it is dropped with the session)."""

import asyncio
import json

import pytest

from gateway.transports.socketio import GatewayServer

PLACEHOLDER = '{"_placeholder":true,"num":%d}'


class Recorded:
    """python-engineio's server with its sends recorded and its disconnect ending the session
    (as python-engineio does, through the disconnect handler); no sockets behind it."""

    def __init__(self, sio: GatewayServer) -> None:
        self.sio = sio
        self.sent: list[str | bytes] = []
        self.closed: list[str] = []
        sio.eio.max_http_buffer_size = 4096
        sio.eio.send = self.send
        sio.eio.disconnect = self.disconnect

    async def send(self, eio_sid: str, data) -> None:
        self.sent.append(data)

    async def disconnect(self, eio_sid: str) -> None:
        self.closed.append(eio_sid)
        await self.sio._handle_eio_disconnect(eio_sid, "server disconnect")


@pytest.fixture
async def server():
    sio = GatewayServer(
        event_limit=1000,
        connect_timeout=10,
        packet_rate=(1000, 1000),
        max_attachments=3,
        async_handlers=False,  # as gateway/asgi.py: handled before the message returns
        async_mode="asgi",
        logger=False,
        engineio_logger=False,
    )
    engine = Recorded(sio)
    handled: list[tuple[str, list, bool]] = []

    async def connect(sid, environ, auth=None):
        return True

    async def any_event(event, sid, *args):
        oversize = sio.manager.eio_sid_from_sid(sid, "/") in sio.oversize
        handled.append((event, list(args), oversize))
        return ("too large",) if oversize else args

    sio.on("connect", connect)
    sio.on("*", any_event)
    await sio._handle_eio_connect("e1", {})
    await sio._handle_eio_message("e1", "0")
    assert engine.sent[0].startswith("0{")  # CONNECT answered
    engine.sent.clear()
    sio.handled, sio.engine = handled, engine
    return sio


async def test_a_binary_event_is_reassembled_and_its_binary_ack_goes_back(server):
    await server._handle_eio_message("e1", f'52-1["echo",{PLACEHOLDER % 1},{{"n":[{PLACEHOLDER % 0}]}}]')
    await server._handle_eio_message("e1", b"zero")
    assert server.handled == [] and server.binary["e1"][1].held == 4
    await server._handle_eio_message("e1", b"one")
    assert server.handled == [("echo", [b"one", {"n": [b"zero"]}], False)]
    header, *attachments = server.engine.sent
    assert header.startswith("62-1") and json.loads(header[4:]) == [
        {"_placeholder": True, "num": 0},
        {"n": [{"_placeholder": True, "num": 1}]},
    ]
    assert attachments == [b"one", b"zero"]
    assert "e1" not in server.binary


async def test_too_many_attachments_or_bytes_are_read_without_being_held_and_flagged_oversize(server):
    placeholders = ",".join(PLACEHOLDER % n for n in range(4))
    await server._handle_eio_message("e1", f'54-1["echo",{placeholders}]')  # more than 3
    held = []
    for n in range(4):
        await server._handle_eio_message("e1", bytes([n]) * 10)
        held.append(server.binary["e1"][1].held if "e1" in server.binary else None)
    assert held == [0, 0, 0, None]
    await server._handle_eio_message("e1", f'52-2["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 1}]')
    await server._handle_eio_message("e1", b"x" * 900)
    assert server.binary["e1"][1].held == 900
    await server._handle_eio_message("e1", b"x" * 200)  # header + 1,100 bytes: over 1,000
    assert [(event, oversize) for event, _, oversize in server.handled] == [("echo", True), ("echo", True)]
    assert server.engine.closed == []


@pytest.mark.parametrize(
    "messages",
    [
        ['51-1["echo","no placeholder"]'],
        [f'51-1["echo",{PLACEHOLDER % 1}]'],
        [f'52-1["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 0}]'],
        ['51-1["echo",{"_placeholder":true,"num":"0"}]'],
        [f"51-1[{PLACEHOLDER % 0}]"],  # the event name is a placeholder
        [f"61-[{PLACEHOLDER % 0}]"],  # a binary ack without id
        [f'5["echo",{PLACEHOLDER % 0}]'],  # no attachment count
        [b"stray"],
        [f'52-1["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 1}]', b"one", '2["echo"]'],  # text while due
        [f'51-1["echo",{PLACEHOLDER % 0}]', b"x" * 4096],  # header + attachment over the ceiling
    ],
    ids=[
        "count-mismatch",
        "out-of-range",
        "repeated",
        "num-not-int",
        "name-placeholder",
        "ack-without-id",
        "no-count",
        "stray-attachment",
        "text-while-due",
        "over-the-ceiling",
    ],
)
async def test_malformed_binary_closes_the_session_and_drops_what_it_held(server, messages, caplog):
    for message in messages:
        await server._handle_eio_message("e1", message)
    assert server.engine.closed == ["e1"]
    assert "e1" not in server.binary and server.handled == []
    assert "echo" not in caplog.text  # reasons only, never the data


async def test_attachments_never_sent_are_dropped_with_the_session(server):
    await server._handle_eio_message("e1", f'52-1["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 1}]')
    await server._handle_eio_message("e1", b"first")
    assert server.binary["e1"][1].held == 5
    await server._handle_eio_disconnect("e1", "transport close")
    assert server.binary == {} and server.handled == []
    await asyncio.sleep(0)
