"""Connection caps per user and per client address, and Engine.IO sessions that never join a
namespace (issue: hardening, item 5). Refusals that are not about credentials send the client
away to retry, without an `auth-failure` it would take for a logout (item 9)."""

import asyncio
import json

import pytest
import websockets

from tests.conftest import REDIS_URL, _start_servers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def capped_server(django_db_setup, django_db_blocker, tmp_path_factory):
    env = {
        "CHAT_SOCKET_MAX_PER_USER": "3",
        "CHAT_SOCKET_MAX_PER_ADDRESS": "5",
        "CHAT_SOCKET_CONNECT_TIMEOUT_SECONDS": "1",
    }
    servers = _start_servers(1, tmp_path_factory.mktemp("caps"), REDIS_URL, env)
    yield servers[0]
    servers[0].stop()


async def _open(server):
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(url)
    assert (await ws.recv()).startswith("0{")
    return ws


async def _connect(server, token: str) -> tuple[object, list[str]]:
    """A raw Engine.IO 4 socket that joins "/" with a token; returns it and what it got until
    the greeting ended or the server closed it."""
    ws = await _open(server)
    await ws.send("40" + json.dumps({"token": token}))
    got = []
    try:
        while True:
            frame = await asyncio.wait_for(ws.recv(), 5)
            got.append(frame)
            if frame == "1" or "group-chat-list" in frame:
                break
    except websockets.ConnectionClosed:
        got.append("closed")
    return ws, got


def _greeted(got: list[str]) -> bool:
    return any("group-chat-list" in frame for frame in got)


def _sent_away(got: list[str]) -> bool:
    """Closed at the transport (Engine.IO CLOSE or the socket), with no auth-failure."""
    return got[-1] in ("1", "closed") and not any("auth-failure" in frame for frame in got)


async def test_a_user_over_the_cap_is_sent_away_to_retry_not_logged_out(capped_server, make_user):
    alice = make_user("Alice")
    held = []
    for _ in range(3):
        ws, got = await _connect(capped_server, alice.access)
        assert _greeted(got)
        held.append(ws)
    ws, got = await _connect(capped_server, alice.access)
    assert _sent_away(got), got
    await held.pop().close()  # one fewer: the next one is accepted again
    await asyncio.sleep(0.3)
    ws, got = await _connect(capped_server, alice.access)
    assert _greeted(got), got
    for socket in [*held, ws]:
        await socket.close()


async def test_an_address_over_the_cap_is_sent_away(capped_server, make_user):
    users = [make_user(f"U{i}") for i in range(6)]
    held = []
    for user in users[:5]:
        ws, got = await _connect(capped_server, user.access)
        assert _greeted(got)
        held.append(ws)
    ws, got = await _connect(capped_server, users[5].access)
    assert _sent_away(got), got
    for socket in held:
        await socket.close()


async def test_a_session_that_joins_no_namespace_is_closed(capped_server):
    ws = await _open(capped_server)
    closed = False
    try:
        for _ in range(10):
            if await asyncio.wait_for(ws.recv(), 3) == "1":
                closed = True
                break
    except websockets.ConnectionClosed:
        closed = True
    assert closed
