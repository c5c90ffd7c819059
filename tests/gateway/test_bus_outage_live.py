"""When the bus (Redis) fails, the clients of every process are told to resync, and again once
it is back; a documented client that syncs then misses nothing (issue: hardening, item 7).

The test runs its own Redis server, so that stopping it touches nothing else."""

import asyncio
import json
import shutil
import socket
import subprocess
import time

import pytest
import websockets

from tests.conftest import REQUIRE_SERVICES, _free_port, _start_servers
from tests.realtime.clients import connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)


class OwnRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def outage_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    if shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")
    redis = OwnRedis()
    redis.start()
    servers = _start_servers(2, tmp_path_factory.mktemp("outage"), f"redis://127.0.0.1:{redis.port}/0")
    yield servers, redis
    for server in servers:
        server.stop()
    redis.stop()


async def _raw_connect(server, token: str) -> list[str]:
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    got = []
    async with websockets.connect(url) as ws:
        await asyncio.wait_for(ws.recv(), 5)
        await ws.send("40" + json.dumps({"token": token}))
        try:
            while True:
                got.append(await asyncio.wait_for(ws.recv(), 10))
        except websockets.ConnectionClosed:
            got.append("closed")
    return got


async def test_clients_are_told_to_resync_and_miss_nothing_after_a_redis_restart(
    outage_pair, alice, bob, carol
):
    (one, two), redis = outage_pair
    a = await connect_greeted(one, alice, extensions=True)
    b = await connect_greeted(two, bob, extensions=True)
    chat_id = ok(await a.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
    await b.next("create-personal-chat-partner")
    first = ok(await a.call("send-personal-message", {"ChatId": chat_id, "Content": "m0"}))
    assert (await b.next("receive-personal-message"))["Id"] == first["Id"]
    position = first["Rev"]

    redis.stop()  # the end of traffic falls inside the outage
    sent = [
        ok(await a.call("send-personal-message", {"ChatId": chat_id, "Content": f"m{i}"})) for i in (1, 2, 3)
    ]
    assert (await b.next("resync", timeout=10)) == {"Reason": "bus"}  # the outage, noticed
    await b.none("receive-personal-message", wait=0.5)  # lost on the bus, stored in the database
    # A client connecting during the outage is sent away to retry: no auth-failure, which the
    # original ExpressChat page would take for a logout.
    got = await _raw_connect(two, carol.access)
    assert not any("auth-failure" in frame for frame in got) and got[-1] == "closed", got

    redis.start()
    assert (await b.next("resync", timeout=15)) == {"Reason": "bus"}  # and its end
    data = ok(await b.call("sync", {"Positions": {chat_id: position}}))
    got = [m["_id"] for m in data["Chats"][chat_id]["Messages"]]
    assert got == [s["Id"] for s in sent]  # nothing missing
    # Live delivery is back.
    later = ok(await a.call("send-personal-message", {"ChatId": chat_id, "Content": "m4"}))
    assert (await b.next("receive-personal-message", timeout=10))["Id"] == later["Id"]
    await a.close()
    await b.close()
    for server in (one, two):  # one warning per outage, not a traceback per failure
        server._log_file.flush()
        assert "Traceback" not in server.log.read_text(errors="replace")
