"""The plug-in contract: a protocol defined in the tests (tests/gateway/tiny/), mounted by one
settings entry in a live server beside ExpressChat, works without any change to the core, the
hub or the transports; and its users share conversations with ExpressChat users."""

import json

import pytest
import socketio

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
]


@pytest.fixture(scope="module")
def tiny_server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(
        1, tmp_path_factory.mktemp("tiny"), REDIS_URL, {"CHAT_PROTOCOLS": json.dumps(MOUNTS)}
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
