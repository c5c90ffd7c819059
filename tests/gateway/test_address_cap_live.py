"""An address at its connection cap (CHAT_SOCKET_MAX_PER_ADDRESS): the clients past it are sent
away to retry, and the process goes on serving. Issue 19a: in the quick reconnect storm (1,040
clients from 127.0.0.1, the cap at 1,000) the server drained "at about 1,000 connections"; the
drain was the bench's own SIGTERM once its ramp gave up waiting for the 40 clients the cap kept
out, and nothing in the server's log said that the cap was refusing them. Now it does, once a
minute per address, and the drain says what started it."""

import asyncio
import urllib.request

import pytest
import socketio

from tests.conftest import REDIS_URL, _start_servers

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 20
CLIENTS = 25
GREETING = "group-chat-list"  # the last event of ExpressChat's greeting


@pytest.fixture
def capped_server(django_db_setup, django_db_blocker, tmp_path):
    # A server of its own: the cap warning is told once a minute per address.
    servers = _start_servers(1, tmp_path, REDIS_URL, {"CHAT_SOCKET_MAX_PER_ADDRESS": str(CAP)})
    yield servers[0]
    servers[0].stop()


class Retrying:
    """A python-socketio client that reconnects by itself, as the bench's socket.io clients do."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.greetings = 0
        self.disconnects = 0
        self.sio = socketio.AsyncClient(reconnection_delay=0.2, reconnection_delay_max=0.5)
        self.sio.on(GREETING, self._greeted)
        self.sio.on("disconnect", self._disconnected)

    async def _greeted(self, *args) -> None:
        self.greetings += 1

    async def _disconnected(self, *args) -> None:
        self.disconnects += 1

    async def start(self) -> None:
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=5)


def _ready(server) -> int:
    try:
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def _until(condition, seconds: float) -> bool:
    for _ in range(int(seconds / 0.1)):
        if condition():
            return True
        await asyncio.sleep(0.1)
    return condition()


async def test_clients_past_the_address_cap_are_refused_and_the_server_keeps_serving(
    capped_server, make_user
):
    users = [make_user(f"Cap{n}") for n in range(CLIENTS)]
    clients = [Retrying(capped_server.url, user.access) for user in users]
    try:
        for client in clients:
            await client.start()
        assert await _until(lambda: sum(c.greetings > 0 for c in clients) == CAP, 10)
        held, kept_out = [c for c in clients if c.greetings], [c for c in clients if not c.greetings]
        # The ones past the cap are sent away and keep retrying for a while; nobody else moves.
        assert await _until(lambda: all(c.disconnects >= 2 for c in kept_out), 10)
        assert all(c.disconnects == 0 for c in held)
        assert sum(c.greetings > 0 for c in clients) == CAP
        assert capped_server.proc.poll() is None
        assert _ready(capped_server) == 200  # /readyz says 503 "draining" once a drain began
        log = capped_server.log.read_text()
        assert "drain:" not in log, log[-3000:]
        warnings = [line for line in log.splitlines() if "address at its connection cap" in line]
        assert len(warnings) == 1, log[-3000:]  # once a minute, not once per refusal
        assert "address=127.0.0.1 " in warnings[0] and f" cap={CAP} " in warnings[0]
        # Room again: the clients kept out get in with their next retry.
        for client in held[: len(kept_out)]:
            await client.sio.disconnect()
        assert await _until(lambda: all(c.greetings > 0 for c in kept_out), 15)
        assert capped_server.proc.poll() is None
        assert "drain:" not in capped_server.log.read_text()
    finally:
        for client in clients:
            await client.sio.disconnect()
