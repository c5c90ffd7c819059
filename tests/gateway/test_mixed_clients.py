"""Socket.IO 2 and Socket.IO 4 clients share one conversation: ExpressChat mounted on both
transports at /socket.io/ (routed by EIO version), with the real npm clients 2.3.1 and 4.0.1;
on one server process, and on two processes sharing Redis."""

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, _start_servers, require_node_package, require_redis

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "mixed_clients.mjs"
NODE = shutil.which("node")
MOUNTS = [
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
    },
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio3",
        "path": "/socket.io/",
        "namespace": "/",
    },
]
ENV = {"CHAT_PROTOCOLS": json.dumps(MOUNTS)}


@pytest.fixture(autouse=True)
def _node_clients():
    require_node_package("socket.io-client-v2", "2.3.1")


def _run(alice_url: str, bob_url: str, alice, bob, *, alice_client: str = "v4") -> list[dict]:
    env = {**os.environ, "ALICE_CLIENT": alice_client}
    done = subprocess.run(
        [NODE, str(SCRIPT), alice_url, bob_url, alice.access, bob.access, bob.refresh, bob.id],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env,
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, (done.returncode, records, done.stderr[-2000:])
    return records


def _check(records: list[dict], alice, bob) -> None:
    greeted = next(r for r in records if r.get("step") == "greeted")
    assert greeted["bobTransport"] == "websocket"
    user_ids = {r["client"]: r["data"]["userId"] for r in records if r.get("event") == "user-id"}
    assert user_ids == {"alice": alice.id, "bob": bob.id}
    received = {r["client"]: r["data"] for r in records if r.get("event") == "receive-personal-message"}
    assert (received["bob"]["Content"], received["bob"]["SenderId"]) == ("hi from 4 👋", alice.id)
    assert (received["alice"]["Content"], received["alice"]["SenderId"]) == ("hi from 2 🎉", bob.id)
    bob_ack = next(r["data"] for r in records if r["kind"] == "ack" and r["client"] == "bob")
    assert bob_ack["ok"] and bob_ack["data"]["ClientMessageId"] == "b-1"
    assert records[-1] == {"kind": "done"}


@pytest.fixture(scope="module")
def mixed_server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(1, tmp_path_factory.mktemp("mixed"), REDIS_URL, ENV)
    yield servers[0]
    servers[0].stop()


def test_a_socketio_2_client_and_a_socketio_4_client_talk_on_one_path(mixed_server, alice, bob):
    _check(_run(mixed_server.url, mixed_server.url, alice, bob), alice, bob)


@pytest.fixture(scope="module")
def mixed_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    require_redis()
    servers = _start_servers(2, tmp_path_factory.mktemp("mixedpair"), REDIS_URL, ENV)
    yield servers
    for server in servers:
        server.stop()


def test_a_socketio_2_client_on_one_process_and_a_socketio_4_client_on_another(mixed_pair, alice, bob):
    one, two = mixed_pair
    _check(_run(one.url, two.url, alice, bob), alice, bob)


def test_socketio_2_clients_on_two_processes_sharing_redis(mixed_pair, alice, bob):
    one, two = mixed_pair
    _check(_run(one.url, two.url, alice, bob, alice_client="v2"), alice, bob)


async def _eio3_socket(server, user):
    import websockets

    url = server.url.replace("http://", "ws://") + (
        f"/socket.io/?EIO=3&transport=websocket&accessToken={user.access}&refreshToken={user.refresh}"
    )
    ws = await websockets.connect(url)
    frames = []
    while not any("group-chat-list" in f for f in frames):  # open, 40, then the greeting
        frames.append(await asyncio.wait_for(ws.recv(), 5))
    return ws


async def test_socketio_2_clients_get_the_same_event_limit_and_packet_budget(mixed_server, alice):
    """As on Engine.IO 4: an event over the protocol limit (and under the ceiling) is answered
    payload_too_large and the socket stays; a flood of packets closes the session."""
    import websockets

    ws = await _eio3_socket(mixed_server, alice)
    await ws.send('421["send-self-message",{"Content":"' + "x" * 200_000 + '"}]')
    answers = []
    while not any(f.startswith("431") for f in answers):
        answers.append(await asyncio.wait_for(ws.recv(), 5))
    ack = json.loads(next(f for f in answers if f.startswith("431"))[3:])[0]
    assert ack["ok"] is False and ack["error"]["code"] == "payload_too_large"
    await ws.send('422["fetch-user-details",{}]')  # still connected
    while True:
        frame = await asyncio.wait_for(ws.recv(), 5)
        if frame.startswith("432"):
            assert json.loads(frame[3:])[0]["data"]["Id"] == alice.id
            break
    closed = False
    try:
        for i in range(2000):  # acks nobody asked for: packets, not events
            await ws.send(f"43{i}[]")
        for _ in range(500):
            await asyncio.wait_for(ws.recv(), 5)
    except websockets.ConnectionClosed:
        closed = True
    assert closed


async def test_a_ping_storm_from_a_socketio_2_client_closes_its_session(mixed_server, alice, bob):
    import websockets

    ws = await _eio3_socket(mixed_server, alice)
    closed = False
    try:
        for _ in range(3000):
            await ws.send("2")
        for _ in range(4000):
            await asyncio.wait_for(ws.recv(), 5)
    except websockets.ConnectionClosed:
        closed = True
    assert closed
    other = await _eio3_socket(mixed_server, bob)  # others are unaffected
    await other.close()
