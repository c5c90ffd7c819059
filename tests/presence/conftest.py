"""Fixtures for receipts, unread counts, typing and presence.

Live tests run their own server processes with short presence and typing timers (read from the
environment, as in production), so transitions and expiry take a second, not a minute:
`presence_pair` (two processes on Redis, shared by a module) and `doomed_pair` (two processes
for one test, which may kill one of them with SIGKILL).
"""

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import pytest

from tests.conftest import REDIS_URL, ServerProcess, _start_servers, require_redis
from tests.realtime.clients import SioClient, WsClient

# Seconds. A process beats every HEARTBEAT; a dead one's users are offline TTL after its last
# beat, found at the next beat of a live one, published after DEBOUNCE.
HEARTBEAT = 0.3
TTL = 1.2
DEBOUNCE = 0.3
TYPING_TTL = 2
TYPING_MIN_INTERVAL = 1
PRESENCE_ENV = {
    "CHAT_PRESENCE_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "CHAT_PRESENCE_TTL_SECONDS": str(TTL),
    "CHAT_PRESENCE_DEBOUNCE_SECONDS": str(DEBOUNCE),
    "CHAT_TYPING_TTL_SECONDS": str(TYPING_TTL),
    "CHAT_TYPING_MIN_INTERVAL_SECONDS": str(TYPING_MIN_INTERVAL),
}
# Long enough for a debounced transition on another process, short enough to fail fast.
ARRIVES = 5.0


@contextmanager
def _environment(extra: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_presence_servers(count: int, tmp, redis_url: str) -> list[ServerProcess]:
    with _environment(PRESENCE_ENV):
        return _start_servers(count, tmp, redis_url)


def kill(server: ServerProcess) -> None:
    """SIGKILL: no shutdown hook runs, no connection is closed cleanly, nothing is unregistered."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)


@pytest.fixture(scope="module")
def presence_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two server processes sharing Redis and the database, with short presence timers."""
    require_redis()
    servers = start_presence_servers(2, tmp_path_factory.mktemp("presence-pair"), REDIS_URL)
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def doomed_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two fresh server processes for one test that kills one of them."""
    require_redis()
    servers = start_presence_servers(2, tmp_path_factory.mktemp("doomed-pair"), REDIS_URL)
    yield servers
    for server in servers:
        server.stop()


# --- live helpers ---------------------------------------------------------------------------


_opened: list[SioClient | WsClient] = []


@pytest.fixture
async def close_clients():
    """Close every client a live test opened, also when it failed half-way."""
    yield
    while _opened:
        client = _opened.pop()
        try:
            if isinstance(client, WsClient):
                if client.ws is not None and not client.closed.is_set():
                    await client.close()
            elif client.sio.connected:
                await client.close()
        except Exception:  # noqa: S110 - a client the server already dropped
            pass


async def device(server: ServerProcess, chat_user) -> SioClient:
    """A Socket.IO connection of `chat_user`, greeted (so it counts as online)."""
    client = await SioClient().connect(server.url, token=chat_user.access)
    _opened.append(client)
    await client.next("group-chat-list")
    return client


async def ws_device(server: ServerProcess, chat_user) -> WsClient:
    """A /ws/ connection of `chat_user`, greeted."""
    client = await WsClient().connect(server.url, headers={"Authorization": f"Bearer {chat_user.access}"})
    _opened.append(client)
    await client.next("group-chat-list")
    return client


async def rest(server: ServerProcess, chat_user, method: str, path: str, body=None) -> tuple[int, dict]:
    """A REST call to a live server as `chat_user`."""
    headers = {"Authorization": f"Bearer {chat_user.access}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, json=body, headers=headers) as response,
    ):
        return response.status, await response.json()
