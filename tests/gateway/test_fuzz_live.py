"""A bounded, seeded fuzz of raw Engine.IO / Socket.IO packets and /ws/ frames against a live
server (issue: hardening, "done when"): the process stays up, its memory stays bounded, nothing
is logged as a traceback, and a bystander keeps receiving its messages."""

import asyncio
import json
import random

import pytest
import websockets

from tests.realtime.clients import connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)

SEED = 20261205
SHAPES = 600
EVENTS = ["send-personal-message", "search-user", "typing", "sync", "fetch-group-chat", "mark-read", "react"]
ODD_VALUES = [
    None,
    True,
    0,
    -1,
    2**64,
    1.5,
    "",
    "x" * 5000,
    "\ud800",
    "\x00",
    "💬" * 300,
    [],
    {},
    [[[]]],
    {"_placeholder": True, "num": 0},
    "[" * 200,
    {"ChatId": ["a"]},
    {"Content": {"a": 1}},
]


def _value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return {
            rng.choice(["ChatId", "Content", "Type", "Name", "Seq", "Positions", "All", "Emoji"]): _value(
                rng, depth + 1
            )
            for _ in range(rng.randint(0, 4))
        }
    if depth < 3 and roll < 0.35:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(ODD_VALUES)


def _socketio_shape(rng: random.Random) -> str:
    kind = rng.randint(0, 9)
    event = rng.choice(EVENTS + ["", "x" * 300, "auth"])
    body = json.dumps([event, _value(rng)])
    return [
        "42" + body,
        "42" + str(rng.randint(0, 10**9)) + body,
        "42" + body[: rng.randint(0, len(body))],  # truncated
        "4" + rng.choice("0123456789x") + body,  # any socket.io type
        "43" + str(rng.randint(0, 99)) + "[]",  # an ack nobody asked for
        "45" + "1-" + body,  # binary event
        rng.choice(["2", "3", "5", "6", "9", "4", "", "40", "41", "44"]),  # engine.io types
        "42" + json.dumps([_value(rng), _value(rng)]),  # an event name that is not a string
        "4" + "[" * rng.randint(1, 5000),
        "42" + json.dumps([event] + [_value(rng) for _ in range(rng.randint(2, 6))]),
    ][kind]


def _ws_shape(rng: random.Random) -> str:
    kind = rng.randint(0, 4)
    frame = {"event": rng.choice(EVENTS), "data": _value(rng), "ack": rng.choice([1, "a", None, [], True])}
    text = json.dumps(frame)
    return [
        text,
        text[: rng.randint(0, len(text))],
        json.dumps(_value(rng)),
        "[" * rng.randint(1, 5000),
        "x",
    ][kind]


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def _raw_socketio(server, token: str):
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(url)
    await asyncio.wait_for(ws.recv(), 5)
    await ws.send("40" + json.dumps({"token": token}))
    return ws


async def _until(ws, done) -> bool:
    """Read until a frame satisfies `done` (True) or the server closes the socket or the
    Engine.IO session (its CLOSE packet, `1`) (False)."""
    try:
        while True:
            frame = await asyncio.wait_for(ws.recv(), 5)
            if done(frame):
                return True
            if frame == "1":
                await ws.close()
                return False
    except websockets.ConnectionClosed:
        return False


async def _send_all(make_socket, shapes: list[str], probe: str, answered) -> int:
    """Send each shape, then a probe the server answers: the next shape goes only once the
    server has handled this one (or closed the socket, and a new one is opened). Returns how
    many sockets the server closed."""
    ws, closed = await make_socket(), 0
    for shape in shapes:
        try:
            await ws.send(shape)
            await ws.send(probe)
        except websockets.ConnectionClosed:
            pass
        if shape.startswith("41"):  # the client left the namespace: nothing answers there now
            await ws.close()
            ws = await make_socket()
            continue
        try:
            alive = await _until(ws, answered)
        except TimeoutError:
            raise AssertionError(f"neither answered nor closed after {shape[:200]!r}") from None
        if not alive:
            closed += 1
            ws = await make_socket()
    await ws.close()
    return closed


async def test_fuzzed_packets_and_frames_leave_the_server_up_quiet_and_serving(live_server_proc, alice, bob):
    rng = random.Random(SEED)
    socketio_shapes = [_socketio_shape(rng) for _ in range(SHAPES)]
    ws_shapes = [_ws_shape(rng) for _ in range(SHAPES // 3)]
    server = live_server_proc
    server._log_file.flush()
    start = server.log.stat().st_size
    bystander = await connect_greeted(server, bob)
    sender = await connect_greeted(server, alice)
    chat_id = ok(await sender.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
    rss_before = _rss_kib(server.proc.pid)

    async def socketio_socket():
        ws = await _raw_socketio(server, alice.access)
        await _until(ws, lambda frame: "group-chat-list" in frame)  # greeted
        return ws

    async def ws_socket():
        url = server.url.replace("http://", "ws://") + "/ws/"
        ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {alice.access}"})
        await _until(ws, lambda frame: "group-chat-list" in frame)
        return ws

    sio_closed = await _send_all(
        socketio_socket, socketio_shapes, '42999["fetch-user-details"]', lambda f: f.startswith("43999")
    )
    ws_closed = await _send_all(
        ws_socket, ws_shapes, '{"event": "fetch-user-details", "ack": 999}', lambda f: '"ack": 999' in f
    )
    # Most shapes are refused on a socket that stays; the worst ones close it.
    assert 0 < sio_closed < len(socketio_shapes) and ws_closed < len(ws_shapes)
    await asyncio.sleep(0.5)

    assert server.proc.poll() is None
    growth_mib = (_rss_kib(server.proc.pid) - rss_before) / 1024
    assert growth_mib < 20, growth_mib
    for round_ in range(5):  # the bystander still gets every message
        ok(await sender.call("send-personal-message", {"ChatId": chat_id, "Content": f"still here {round_}"}))
        assert (await bystander.next("receive-personal-message"))["Content"] == f"still here {round_}"
    server._log_file.flush()
    with open(server.log, "rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", "replace")
    assert "Traceback" not in text
    await sender.close()
    await bystander.close()
