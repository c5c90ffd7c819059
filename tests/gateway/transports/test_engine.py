"""The Engine.IO 4 session with fewer tasks (gateway/transports/engine.py), driven in-process with
a fake websocket: what it sends and when it ends, as python-engineio's own session does. The live
tests of every Engine.IO 4 protocol (2 s pings in tests/conftest.py) run the same code with real
clients."""

import asyncio

import pytest
from engineio import packet
from engineio.async_socket import AsyncSocket

from gateway.transports.engine import EngineServer, LeanSocket, decoded, translate_request
from gateway.transports.send_queue import SendQueue

PING, PONG, MESSAGE = str(packet.PING), str(packet.PONG), str(packet.MESSAGE)


class FakeWebSocket:
    """What python-engineio's ASGI driver gives the session: wait, send, close."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: list[str] = []
        self.closed = False

    async def wait(self):
        return await self.incoming.get()

    async def send(self, data) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed = True


def server(ping_interval: float = 10.0, ping_timeout: float = 10.0):
    eio = EngineServer(async_mode="asgi", ping_interval=ping_interval, ping_timeout=ping_timeout)
    events: list[tuple] = []

    async def connect(sid, environ):
        events.append(("connect", sid, type(eio.sockets[sid])))

    async def message(sid, data):
        events.append(("message", sid, data))

    async def disconnect(sid, reason):
        events.append(("disconnect", sid, reason))

    eio.on("connect", connect)
    eio.on("message", message)
    eio.on("disconnect", disconnect)
    return eio, events


async def open_session(eio, ws: FakeWebSocket) -> tuple[str, asyncio.Task]:
    """What python-engineio's `_handle_connect` does for a websocket connect, up to the read loop."""
    sid = "s1"
    eio.sockets[sid] = AsyncSocket(eio, sid)
    await eio._trigger_event("connect", sid, {}, run_async=False)
    socket = eio.sockets[sid]
    socket.schedule_ping()
    return sid, asyncio.ensure_future(socket._websocket_handler(ws))


async def test_sessions_become_lean_with_the_small_queue_at_the_connect():
    eio, events = server()
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    socket = eio.sockets[sid]
    assert events[0] == ("connect", sid, LeanSocket)
    assert isinstance(socket.queue, SendQueue)
    ws.incoming.put_nowait(None)
    await asyncio.wait_for(handler, 1)


async def test_messages_reach_the_server_and_sends_reach_the_websocket_in_order():
    eio, events = server()
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    socket = eio.sockets[sid]
    ws.incoming.put_nowait(MESSAGE + "one")
    ws.incoming.put_nowait(MESSAGE + "two")
    for data in ("a", "b", "c"):
        await socket.send(packet.Packet(packet.MESSAGE, data))
    await asyncio.sleep(0.05)
    assert [e for e in events if e[0] == "message"] == [("message", sid, "one"), ("message", sid, "two")]
    assert ws.sent == [MESSAGE + "a", MESSAGE + "b", MESSAGE + "c"]
    ws.incoming.put_nowait(None)  # the client closed
    await asyncio.wait_for(handler, 1)
    assert ws.closed and socket.closed
    assert events[-1] == ("disconnect", sid, eio.reason.TRANSPORT_CLOSE)


async def test_what_is_queued_is_sent_before_the_websocket_closes():
    eio, _ = server()
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    socket = eio.sockets[sid]
    socket.queue.put_nowait(packet.Packet(packet.MESSAGE, "last"))
    ws.incoming.put_nowait(None)
    await asyncio.wait_for(handler, 1)
    assert ws.sent == [MESSAGE + "last"] and ws.closed


async def test_pings_follow_pongs_one_interval_later():
    eio, _ = server(ping_interval=0.05, ping_timeout=1)
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    socket = eio.sockets[sid]
    await asyncio.sleep(0.1)
    assert ws.sent == [PING]  # one ping, then nothing until the pong
    await asyncio.sleep(0.1)
    assert ws.sent == [PING]
    ws.incoming.put_nowait(PONG)
    await asyncio.sleep(0.02)
    assert ws.sent == [PING]
    await asyncio.sleep(0.1)
    assert ws.sent == [PING, PING]
    ws.incoming.put_nowait(None)
    await asyncio.wait_for(handler, 1)
    assert socket.closed


async def test_a_client_silent_past_interval_plus_timeout_is_closed():
    eio, events = server(ping_interval=0.05, ping_timeout=0.05)
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    await asyncio.wait_for(handler, 2)  # nothing from the client: the read times out
    assert ws.closed and eio.sockets[sid].closed
    assert events[-1] == ("disconnect", sid, eio.reason.TRANSPORT_CLOSE)


async def test_an_oversized_frame_ends_the_session():
    eio, _ = server()
    eio.max_http_buffer_size = 10
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    ws.incoming.put_nowait(MESSAGE + "x" * 20)
    await asyncio.wait_for(handler, 1)
    assert eio.sockets[sid].closed and ws.closed


async def test_each_read_has_its_own_limit_so_a_client_that_keeps_talking_stays():
    eio, events = server(ping_interval=0.1, ping_timeout=0.1)  # a read may wait 0.2 s
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    for _ in range(8):  # 0.4 s in all, longer than one limit, each read well under it
        await asyncio.sleep(0.05)
        ws.incoming.put_nowait(PONG)
    assert not handler.done() and not eio.sockets[sid].closed
    await asyncio.wait_for(handler, 2)  # then silent: the read times out
    assert ws.closed and eio.sockets[sid].closed
    assert events[-1] == ("disconnect", sid, eio.reason.TRANSPORT_CLOSE)


async def test_a_handler_longer_than_the_limit_is_not_a_read_that_timed_out():
    eio, events = server(ping_interval=0.1, ping_timeout=0.1)  # a read may wait 0.2 s
    eio.async_handlers = False  # as python-socketio sets it: the read loop runs the handler
    handled: list[str] = []

    async def slow(sid, data):
        handled.append(data)
        if data == "slow":
            await asyncio.sleep(0.4)

    eio.on("message", slow)
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    socket = eio.sockets[sid]
    socket.last_ping = 0  # no pings: none could be answered while the handler runs
    socket._ping_timer.cancel()
    ws.incoming.put_nowait(MESSAGE + "slow")
    for n in range(8):  # the server keeps sending meanwhile: the writer's waits stay short
        await asyncio.sleep(0.05)
        await socket.send(packet.Packet(packet.MESSAGE, str(n)))
    ws.incoming.put_nowait(MESSAGE + "after")
    await asyncio.sleep(0.05)
    assert handled == ["slow", "after"]
    assert not handler.done() and not socket.closed
    ws.incoming.put_nowait(None)
    await asyncio.wait_for(handler, 1)


async def test_a_writer_with_nothing_to_send_past_the_limit_closes_the_websocket():
    eio, events = server(ping_interval=0.1, ping_timeout=0.1)
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    eio.sockets[sid].last_ping = 0  # no ping will be queued: the writer waits with nothing to send
    eio.sockets[sid]._ping_timer.cancel()
    ws.incoming.put_nowait(MESSAGE + "hello")
    await asyncio.sleep(0.3)  # past the limit
    assert ws.closed  # python-engineio's writer closes the websocket when its wait runs out
    ws.incoming.put_nowait(None)  # what the closed websocket then reads
    await asyncio.wait_for(handler, 1)
    assert eio.sockets[sid].closed
    assert events[-1] == ("disconnect", sid, eio.reason.TRANSPORT_CLOSE)


def _receiving(*events):
    queue = list(events)

    async def receive():
        return queue.pop(0)

    return receive


SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/socket.io/",
    "query_string": b"EIO=4&transport=polling&sid=abc",
    "headers": [
        (b"content-type", b"text/plain"),
        (b"content-length", b"9"),
        (b"x-forwarded-proto", b"https"),
        (b"accept", b"a"),
        (b"accept", b"b"),
        (b"x-bad", b"\xff"),
    ],
}


async def test_requests_are_translated_with_one_body_class_and_read_whole():
    """The environ python-engineio's ASGI driver makes, without a class defined per request
    (cyclic garbage per handshake); the Engine.IO 4 servers use it."""
    assert EngineServer(async_mode="asgi")._async["translate_request"] is translate_request
    chunks = _receiving(
        {"type": "http.request", "body": b"4hel", "more_body": True},
        {"type": "http.request", "body": b"lo", "more_body": True},
        {"type": "http.request", "body": b"!!!", "more_body": False},
    )
    environ = await translate_request(SCOPE, chunks, None)
    assert (environ["REQUEST_METHOD"], environ["PATH_INFO"]) == ("POST", "/socket.io/")
    assert environ["QUERY_STRING"] == "EIO=4&transport=polling&sid=abc"
    assert environ["RAW_URI"] == "/socket.io/?EIO=4&transport=polling&sid=abc"
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("text/plain", "9")
    assert environ["HTTP_ACCEPT"] == "a,b" and "HTTP_X_BAD" not in environ
    assert environ["wsgi.url_scheme"] == "https" and environ["asgi.scope"] is SCOPE
    assert await environ["wsgi.input"].read(9) == b"4hello!!!"  # python-engineio reads CONTENT_LENGTH
    assert await environ["wsgi.input"].read() == b""
    other = await translate_request(SCOPE, _receiving({"type": "http.request", "body": b"x"}), None)
    assert type(other["wsgi.input"]) is type(environ["wsgi.input"])
    assert await other["wsgi.input"].read() == b"x"
    ws_scope = {**SCOPE, "type": "websocket", "query_string": b"", "headers": []}
    upgrade = await translate_request(ws_scope, _receiving({"type": "websocket.connect"}), None)
    assert upgrade["QUERY_STRING"] == "" and upgrade["RAW_URI"] == "/socket.io/"
    assert await upgrade["wsgi.input"].read() == b""
    assert await translate_request(SCOPE, _receiving({"type": "http.disconnect"}), None) == {}


async def test_an_idle_session_holds_neither_its_last_frame_nor_what_it_sent():
    """While the read waits for the next frame and the writer for the next packets, neither
    holds the last packet (a connection's last frame is often its namespace CONNECT, token and
    all, and every held object is traversed by each collection of the cyclic collector)."""
    import gc

    eio, events = server()
    sid, handler = await open_session(eio, ws := FakeWebSocket())
    socket = eio.sockets[sid]
    ws.incoming.put_nowait(MESSAGE + "received-frame")
    await socket.send(packet.Packet(packet.MESSAGE, "sent-frame"))
    await asyncio.sleep(0.05)
    assert ("message", sid, "received-frame") in events and MESSAGE + "sent-frame" in ws.sent
    # `type`, not `isinstance`: the heap may hold weak proxies whose referent is gone.
    held = [o.data for o in gc.get_objects() if type(o) is packet.Packet]
    assert "received-frame" not in held and "sent-frame" not in held
    ws.incoming.put_nowait(None)
    await asyncio.wait_for(handler, 1)


FRAMES = [
    '42["send-personal-message",{"ChatId":"c","Content":"hi"}]',
    '421["send-personal-message",{}]',
    "40",
    '40{"token":"t"}',
    "41",
    "4\u00b2x",  # a numeric character that is not an ASCII digit
    '4{"a":1}',
    '4["a"]',
    "4abc",
    "4",
    "2",
    "3probe",
    "6",
    "9",
    "bYWJj",
    b"\x04binary",
]


@pytest.mark.parametrize("frame", FRAMES)
def test_frames_decode_as_python_engineio_decodes_them(frame):
    ours, theirs = decoded(frame), packet.Packet(encoded_packet=frame)
    assert (ours.packet_type, ours.data, ours.binary) == (theirs.packet_type, theirs.data, theirs.binary)
    assert ours.encode() == theirs.encode()


@pytest.mark.parametrize("frame", ["", "x"])
def test_bad_frames_fail_as_python_engineio_fails_them(frame):
    with pytest.raises(ValueError):
        packet.Packet(encoded_packet=frame)
    with pytest.raises(ValueError):
        decoded(frame)


def test_a_socketio_packet_is_made_without_decode_and_its_caught_error(monkeypatch):
    """python-engineio's `decode` raises and catches a ValueError for every Socket.IO packet."""

    def refused(self, encoded_packet):
        raise AssertionError("decode called")

    monkeypatch.setattr(packet.Packet, "decode", refused)
    pkt = decoded('42["typing",{"ChatId":"c"}]')
    assert (pkt.packet_type, pkt.data, pkt.binary) == (packet.MESSAGE, '2["typing",{"ChatId":"c"}]', False)
