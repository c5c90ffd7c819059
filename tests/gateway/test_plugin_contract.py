"""The plug-in contract: a protocol defined in the tests (tests/gateway/tiny/), mounted by one
settings entry in a live server beside ExpressChat, works without any change to the core, the
hub or the transports; and its users share conversations with ExpressChat users."""

import json

import pytest
import socketio
import websockets

from tests.conftest import REDIS_URL, _start_servers
from tests.realtime.clients import connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)

MOUNTS = [
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
    },
    {"protocol": "gateway.protocols.expresschat", "transport": "ws", "path": "/ws/"},
    # The one line a new protocol needs:
    {"protocol": "tests.gateway.tiny", "transport": "eio4", "path": "/tiny.io/", "namespace": "/"},
    # The same protocol to Socket.IO 2 clients, on ExpressChat's path: routed by EIO version.
    {"protocol": "tests.gateway.tiny", "transport": "eio3", "path": "/socket.io/", "namespace": "/tiny"},
]


@pytest.fixture(scope="module")
def tiny_server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(
        1,
        tmp_path_factory.mktemp("tiny"),
        REDIS_URL,
        {"CHAT_PROTOCOLS": json.dumps(MOUNTS), "CHAT_METRICS": "1", "CHAT_METRICS_TOKEN": "metrics-test"},
    )
    yield servers[0]
    servers[0].stop()


class TinyClient:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, tuple]] = []

        @self.sio.on("*")
        async def any_event(event, *args):
            self.events.append((event, args))

        @self.sio.event
        async def connect_error(data):
            self.events.append(("connect_error", (data,)))

    async def connect(self, url: str, token: str | None) -> "TinyClient":
        query = f"?token={token}" if token else ""
        await self.sio.connect(url + query, socketio_path="tiny.io", transports=["websocket"], wait_timeout=5)
        return self

    async def wait_for(self, name: str, timeout: float = 5.0) -> tuple:
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for event, args in self.events:
                if event == name:
                    self.events.remove((event, args))
                    return args
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {name} in {self.events}")


async def test_a_protocol_from_the_tests_refuses_with_connect_error(tiny_server):
    for token, message in ((None, "No token"), ("not-a-jwt", "Bad token")):
        client = TinyClient()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(tiny_server.url, token)
        assert client.events == [("connect_error", ({"message": message},))]  # nothing else


async def test_a_protocol_from_the_tests_greets_answers_and_shares_conversations(tiny_server, alice, bob):
    express = await connect_greeted(tiny_server, alice)
    chat_id = ok(await express.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
    tiny = await TinyClient().connect(tiny_server.url, bob.access)
    assert (await tiny.wait_for("hello"))[0] == {"you": bob.id, "chats": 1}
    assert await tiny.sio.call("peek", timeout=5) == (bob.id, "tiny")  # several ack arguments

    # Tiny -> ExpressChat: live, with the same service and the same conversation.
    message_id, seq = await tiny.sio.call("say", (chat_id, "from tiny"), timeout=5)
    got = await express.next("receive-personal-message")
    assert (got["ChatId"], got["Content"], got["Id"], got["Seq"]) == (
        chat_id,
        "from tiny",
        message_id,
        seq,
    )
    # ExpressChat -> Tiny, rendered by the tiny protocol's own render.
    ok(await express.call("send-personal-message", {"ChatId": chat_id, "Content": "from express"}))
    assert (await tiny.wait_for("said"))[0] == {
        "chat": chat_id,
        "from": alice.id,
        "text": "from express",
    }
    # Refusals take the protocol's own shape: bad arguments, unknown events.
    await tiny.sio.emit("say", ("only one",))
    assert (await tiny.wait_for("oops"))[0] == {"event": "say", "code": "invalid"}
    await tiny.sio.emit("nope")
    assert (await tiny.wait_for("oops"))[0] == {"event": "nope", "code": "invalid"}
    await tiny.sio.disconnect()
    await express.close()


async def test_the_same_protocol_serves_socketio_2_clients_beside_engineio_4_on_one_path(tiny_server, alice):
    """A Socket.IO 2 client (Engine.IO 3, spoken raw here; the npm 2.3.1 client is tested in
    tests/gateway/transports/) on /socket.io/ reaches the tiny protocol's hub, while Socket.IO 4
    clients on the same path keep reaching ExpressChat."""
    url = tiny_server.url.replace("http://", "ws://") + "/socket.io/?EIO=3&transport=websocket"
    async with websockets.connect(url) as ws:
        assert (await ws.recv()).startswith("0{")  # Engine.IO 3 open
        await ws.send("40/tiny?token=nope,")
        assert await ws.recv() == '44/tiny,"Bad token"'
        await ws.send(f"40/tiny?token={alice.access},")
        assert await ws.recv() == "40/tiny,"
        hello = await ws.recv()
        assert hello.startswith('42/tiny,["hello",') and alice.id in hello
        await ws.send('42/tiny,7["peek"]')
        assert json.loads((await ws.recv()).removeprefix("43/tiny,7")) == [alice.id, "tiny"]
    express = await connect_greeted(tiny_server, alice)  # Engine.IO 4 on the same path
    assert ok(await express.call("fetch-user-details"))["Id"] == alice.id
    await express.close()


async def test_metrics_carry_each_mount_s_protocol_and_transport(tiny_server, alice):
    """/metrics counts connections and events per protocol and transport (the Engine.IO 3
    figures come from the Socket.IO 2 test above, which runs first in this module)."""
    import aiohttp

    with pytest.raises(socketio.exceptions.ConnectionError):
        await TinyClient().connect(tiny_server.url, None)
    await (await connect_greeted(tiny_server, alice)).close()
    tiny = await TinyClient().connect(tiny_server.url, alice.access)
    await tiny.sio.call("peek", timeout=5)
    await tiny.sio.emit("not-an-event")
    await tiny.wait_for("oops")
    await tiny.sio.disconnect()
    async with aiohttp.ClientSession() as http:
        async with http.get(
            tiny_server.url + "/metrics", headers={"Authorization": "Bearer metrics-test"}
        ) as response:
            text = await response.text()
    assert 'chat_events_in_total{event="peek",protocol="tiny",transport="eio4"}' in text
    assert 'chat_events_in_total{event="peek",protocol="tiny",transport="eio3"}' in text
    assert 'chat_events_in_total{event="other",protocol="tiny",transport="eio4"}' in text
    assert 'chat_event_errors_total{code="invalid",protocol="tiny",transport="eio4"}' in text
    assert 'chat_connect_refusals_total{protocol="tiny",reason="not_authenticated",transport="eio4"}' in text
    assert 'chat_connects_total{protocol="expresschat",transport="eio4"}' in text
