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


async def _send_all(make_socket, shapes: list[str]) -> None:
    """Send the shapes in order, opening a new socket whenever the server closed the last."""
    ws = await make_socket()
    for shape in shapes:
        try:
            await ws.send(shape)
        except websockets.ConnectionClosed:
            ws = await make_socket()
    await ws.close()


async def _drain(ws) -> None:
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed:
        return


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
        asyncio.get_running_loop().create_task(_drain(ws))  # read whatever comes back
        return ws

    async def ws_socket():
        url = server.url.replace("http://", "ws://") + "/ws/"
        ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {alice.access}"})
        asyncio.get_running_loop().create_task(_drain(ws))
        return ws

    await _send_all(socketio_socket, socketio_shapes)
    await _send_all(ws_socket, ws_shapes)
    await asyncio.sleep(1)

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
