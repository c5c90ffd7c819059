"""Engine.IO 4 sessions write a packet to their websocket at once when nothing is ahead of it
(gateway/transports/direct_socket.py), and keep the session's order when something is: a packet
queued before, or a direct write suspended by a slow reader. Driven in-process through the
server's ASGI app with a fake websocket; the live tests run the same code with real clients."""

import asyncio

import pytest
import socketio
from engineio import async_socket
from engineio import packet as eio_packet

from gateway.transports.direct_socket import DirectSocket
from gateway.transports.socketio import GatewayServer


class FakeWebsocket:
    """One client's websocket as the ASGI app sees it. `gate` (cleared) holds writes, as a
    server that paused writing to a slow reader does; `broken` makes them fail."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.written: list[str] = []
        self.closed = False
        self.gate: asyncio.Event | None = None
        self.broken = False

    async def receive(self) -> dict:
        return await self.inbox.get()

    async def send(self, message: dict) -> None:
        if message["type"] == "websocket.close":
            self.closed = True
        if message["type"] != "websocket.send":
            return
        if self.gate is not None:
            await self.gate.wait()
        if self.broken:
            raise OSError("connection lost")
        self.written.append(message["text"])


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def session():
    sio = GatewayServer(
        event_limit=1000,
        connect_timeout=10,
        packet_rate=(1000, 1000),
        async_mode="asgi",
        logger=False,
        engineio_logger=False,
    )
    sio.on("connect", lambda sid, environ, auth=None: True)
    app = socketio.ASGIApp(sio)
    ws = FakeWebsocket()
    scope = {
        "type": "websocket",
        "path": "/socket.io/",
        "query_string": b"EIO=4&transport=websocket",
        "headers": [(b"upgrade", b"websocket"), (b"connection", b"upgrade")],
    }
    ws.inbox.put_nowait({"type": "websocket.connect"})
    ws.inbox.put_nowait({"type": "websocket.receive", "text": "40"})
    task = asyncio.create_task(app(scope, ws.receive, ws.send))
    await _settle()
    assert [text[:2] for text in ws.written] == ["0{", "40"]  # Engine.IO OPEN, then CONNECT
    ws.written.clear()
    (socket,) = sio.eio.sockets.values()
    yield socket, ws
    ws.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)


def _message(text: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, text)


async def test_a_fanout_packet_to_an_idle_websocket_session_is_written_before_send_now_returns(session):
    socket, ws = session
    assert isinstance(socket, DirectSocket)
    await socket.send_now(_message("a"))
    await socket.send_now(_message("b"))
    assert ws.written == ["4a", "4b"]  # no writer task ran in between
    assert socket.queue.empty()


async def test_a_packet_queued_before_goes_out_first(session):
    socket, ws = session
    socket.queue.put_nowait(_message("queued"))  # as python-engineio queues its own packets
    await socket.send_now(_message("after"))
    assert ws.written == []  # behind the queued one, not ahead of it
    await _settle()
    assert ws.written == ["4queued", "4after"]


async def test_a_suspended_write_holds_up_neither_the_sender_nor_the_order(session):
    socket, ws = session
    ws.gate = asyncio.Event()  # the server paused writing: the client reads slowly
    await asyncio.wait_for(socket.send_now(_message("1")), 1)  # returns: a fan-out goes on to others
    await socket.send_now(_message("2"))
    await socket.send_now(_message("3"))
    await _settle()  # the writer woke for 2 and 3, and waits for 1
    assert ws.written == []
    ws.gate.set()
    await _settle()
    assert ws.written == ["41", "42", "43"]
    await socket.send_now(_message("4"))  # idle again: direct
    assert ws.written[-1] == "44"


async def test_a_failed_write_ends_the_writer_and_closes_the_websocket(session):
    socket, ws = session
    ws.broken = True
    await socket.send_now(_message("lost"))  # no exception for the sender (a fan-out goes on)
    await _settle()
    assert ws.closed
    ws.broken = False
    await socket.send_now(_message("later"))
    await _settle()
    assert ws.written == []  # nothing more goes to that websocket


async def test_a_websocket_session_holds_no_attribute_of_its_own_for_direct_writes(session):
    # A socket keeps its attribute table shared with every other socket while it has at most one
    # attribute more than python-engineio sets up (LeanSocket's ping timer takes it); a second
    # costs ~660 bytes per connection. The direct-write state is in the queue's slot.
    socket, _ws = session
    fresh = async_socket.AsyncSocket(socket.server, "fresh")
    assert set(vars(socket)) - set(vars(fresh)) <= {"_ping_timer"}
    assert socket.queue.direct is not None


async def test_a_suspended_write_that_fails_ends_the_writer_and_what_was_queued_behind_it(session):
    socket, ws = session
    ws.gate = asyncio.Event()
    await socket.send_now(_message("1"))
    await socket.send_now(_message("2"))
    ws.broken = True  # the client went away while the server waited to write to it
    ws.gate.set()
    await _settle()
    assert ws.written == [] and ws.closed


async def test_a_packet_sent_outside_a_fanout_goes_through_the_queue(session):
    # Acks, greetings and answers: queued, written by the session's writer task.
    socket, ws = session
    await socket.send(_message("ack"))
    assert ws.written == []
    await _settle()
    assert ws.written == ["4ack"]
