"""Binary arguments on both Socket.IO transports, end to end through a live server: the tiny test
protocol's `echo` (its ack returns the arguments as its handler got them) with the real npm
clients 2.3.1 (Engine.IO 3: websocket, polling, forceBase64) and 4.0.1 and python-socketio's
AsyncClient (Engine.IO 4); ExpressChat, which takes no binary, answers bytes with its usual
`invalid`; malformed binary packets close only their own session, never with a traceback."""

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import websockets

from tests.conftest import REDIS_URL, _start_servers, require_node_package
from tests.gateway.payload_fields import payload_fields
from tests.realtime.clients import SioClient, connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "binary_clients.mjs"
NODE = shutil.which("node")
EMOJI = "héllo 😀👍🏽 — 漢字"
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
        "path": "/legacy.io/",
        "namespace": "/",
    },
    {"protocol": "tests.gateway.tiny", "transport": "eio4", "path": "/tiny.io/", "namespace": "/"},
    {"protocol": "tests.gateway.tiny", "transport": "eio3", "path": "/socket.io/", "namespace": "/tiny"},
]
PLACEHOLDER = '{"_placeholder":true,"num":%d}'


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    env = {
        "CHAT_PROTOCOLS": json.dumps(MOUNTS),
        # The sweep below sends hundreds of events from one connection.
        "CHAT_SOCKET_RATE_BURST": "5000",
        "CHAT_USER_RATE_BURST": "5000",
    }
    servers = _start_servers(1, tmp_path_factory.mktemp("binary"), REDIS_URL, env)
    yield servers[0]
    servers[0].stop()
    assert "Traceback" not in servers[0].log.read_text()


# --- the npm clients ---------------------------------------------------------------------------


def _run(server, token: str, **env: str) -> list[dict]:
    done = subprocess.run(
        [NODE, str(SCRIPT), server.url, token],
        capture_output=True,
        text=True,
        timeout=25,
        cwd=ROOT,
        env={**os.environ, **env},
        check=False,
    )
    records = [json.loads(line) for line in done.stdout.split("\n") if line.strip()]
    assert done.returncode == 0, (done.returncode, records, done.stderr[-2000:])
    return records


@pytest.mark.parametrize(
    "env, transport, b64",
    [
        ({"CLIENT": "v2", "TRANSPORTS": "websocket"}, "websocket", False),
        ({"CLIENT": "v2", "TRANSPORTS": "websocket", "FORCE_BASE64": "1"}, "websocket", True),
        ({"CLIENT": "v2", "TRANSPORTS": "polling"}, "polling", True),  # node's XHR: always b64=1
        ({"CLIENT": "v2"}, "polling", True),  # the default: polling, then the websocket upgrade
        ({"CLIENT": "v4", "TRANSPORTS": "websocket"}, "websocket", False),
        ({"CLIENT": "v4", "TRANSPORTS": "polling"}, "polling", True),
    ],
    ids=["v2-websocket", "v2-websocket-base64", "v2-polling", "v2-upgrade", "v4-websocket", "v4-polling"],
)
def test_npm_clients_echo_bytes_and_emoji_and_get_payload_too_large_past_the_caps(
    server, alice, env, transport, b64
):
    require_node_package("socket.io-client-v2", "2.3.1")
    records = _run(server, alice.access, **env)
    assert records[0] == {"kind": "engine", "transport": transport, "b64": b64}
    upgrades = [r for r in records if r["kind"] == "upgrade"]
    if "TRANSPORTS" not in env:  # upgraded to a websocket that takes binary frames
        assert upgrades == [{"kind": "upgrade", "transport": "websocket", "b64": False}]
    else:
        assert upgrades == []
    acks = [r["data"] for r in records if r["kind"] == "ack"]
    assert acks == [
        [{"bytes": "000102ff"}, EMOJI, {"nested": [{"bytes": "é😀".encode().hex()}, 7]}],
        ["still connected", {"bytes": b"ok".hex()}],
    ]
    # The same arguments as a server-sent event (BINARY_EVENT) before each ack.
    assert [r["data"] for r in records if r["kind"] == "event" and r["event"] == "echoed"] == acks
    refusals = [r["data"] for r in records if r["kind"] == "event" and r["event"] == "oops"]
    # Eleven attachments (the cap is ten), then 70 KB of bytes (the event limit is 64 KiB).
    assert refusals == [{"event": "echo", "code": "payload_too_large"}] * 2
    assert [r["event"] for r in records if r["kind"] == "event"] == [
        "hello",
        "echoed",
        "oops",
        "oops",
        "echoed",
        "disconnect",
    ]


# --- python-socketio (Engine.IO 4) -------------------------------------------------------------


class TinyClient(SioClient):
    async def open(self, server, token: str, transports: list[str]) -> "TinyClient":
        await self.sio.connect(
            f"{server.url}?token={token}", socketio_path="tiny.io", transports=transports, wait_timeout=5
        )
        await self.next("hello")
        return self


async def test_python_socketio_client_echoes_bytes_and_is_refused_past_the_caps(server, alice):
    # Over websocket: Engine.IO 4 polling is the npm 4.0.1 client's case above (python-socketio's
    # polling client takes a ping interval to hang up, which would only slow the test down).
    client = await TinyClient().open(server, alice.access, ["websocket"])
    args = (b"\x00\xff", EMOJI, {"nested": [b"\x01" * 1000, None]}, bytearray(b"ba"))
    back = [b"\x00\xff", EMOJI, {"nested": [b"\x01" * 1000, None]}, b"ba"]
    assert await client.sio.call("echo", args, timeout=5) == tuple(back)
    assert await client.next("echoed") == back  # a BINARY_EVENT from the server
    await client.sio.emit("echo", tuple(bytes([n]) for n in range(11)))
    assert await client.next("oops") == {"event": "echo", "code": "payload_too_large"}
    await client.sio.emit("echo", (b"x" * 70_000,))
    assert await client.next("oops") == {"event": "echo", "code": "payload_too_large"}
    assert await client.sio.call("echo", (b"after",), timeout=5) == b"after"  # one argument: unwrapped
    await client.close()


async def test_expresschat_answers_bytes_with_its_invalid_error_and_keeps_the_connection(server, alice, bob):
    client = await connect_greeted(server, alice)
    chat_id = ok(await client.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
    for payload in (b"\x00", {"ChatId": chat_id, "Content": b"hi"}, {"ChatId": b"\x01", "Content": "hi"}):
        ack = await client.call("send-personal-message", payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid"
        assert (await client.next("error"))["code"] == "invalid"
    sent = ok(await client.call("send-personal-message", {"ChatId": chat_id, "Content": "text"}))
    assert sent["Seq"] == 1  # nothing was stored before
    await client.close()

    # The same over Engine.IO 3 (a raw Socket.IO 2 websocket): a BINARY_EVENT, the same answer.
    url = server.url.replace("http", "ws") + "/legacy.io/?EIO=3&transport=websocket"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {alice.access}"}) as ws:
        assert (await ws.recv()).startswith("0{")
        assert await ws.recv() == "40"
        await ws.send(f'451-7["send-personal-message",{{"ChatId":"{chat_id}","Content":{PLACEHOLDER % 0}}}]')
        await ws.send(b"\x04hi")
        while not (frame := await asyncio.wait_for(ws.recv(), 5)).startswith("437"):
            pass
        assert json.loads(frame[3:])[0]["error"]["code"] == "invalid"
        await ws.send(f'428["send-personal-message",{{"ChatId":"{chat_id}","Content":"text 2"}}]')
        while not (frame := await asyncio.wait_for(ws.recv(), 5)).startswith("438"):
            pass
        assert json.loads(frame[3:])[0]["data"]["Seq"] == 2


async def test_bytes_in_any_field_of_any_expresschat_event_get_a_clear_error_never_internal(
    server, alice, bob
):
    """A sweep: every ExpressChat event, with a payload that is otherwise valid (a real chat, a
    real message, a real group) and each field it reads, or the whole payload, replaced by bytes.
    Each is answered with an ack; none is an internal error (the log is checked for tracebacks
    when the server stops); the connection stays."""
    from gateway.protocols.expresschat import handlers

    fields_read = payload_fields(handlers)
    assert set(fields_read) == set(handlers.HANDLERS)
    client = await connect_greeted(server, alice)
    chat_id = ok(await client.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
    message_id = ok(await client.call("send-personal-message", {"ChatId": chat_id, "Content": "hi"}))["Id"]
    group_id = ok(await client.call("create-group-chat", {"Name": "g", "Participants": [bob.id]}))["GroupId"]
    base = {
        "ChatId": chat_id,
        "GroupId": group_id,
        "Id": message_id,
        "MessageId": message_id,
        "LastMessageId": message_id,
        "MessageIds": [message_id],
        "Content": "text",
        "Receiver": bob.id,
        "Member": bob.id,
        "UserIds": [bob.id],
        "Participants": [bob.id],
        "Name": "name",
        "Description": "about",
        "Emoji": "👍",
        "Seq": 1,
        "Before": 10,
        "Limit": 5,
        "Positions": {},
        "All": True,
        "Kind": "text",
        "Type": "text",
        "State": "online",
        "ClientMessageId": "c-1",
        "ReplyTo": message_id,
        "AttachmentId": None,
        "token": alice.access,
    }
    codes, sent = set(), 0
    for event in sorted(handlers.HANDLERS):
        variants = [b"\x00payload"]
        for field in sorted(fields_read[event] & set(base)):
            variants.append({**base, field: b"\xff"})
            if isinstance(base[field], list):
                variants.append({**base, field: [b"\xff"]})
        for payload in variants:
            ack = await client.call(event, payload)
            sent += 1
            assert isinstance(ack, dict) and "ok" in ack, (event, ack)
            if not ack["ok"]:
                codes.add(ack["error"]["code"])
    assert "internal_error" not in codes and "invalid" in codes
    assert sent > 100  # the field lists were found
    assert ok(await client.call("fetch-user-details"))["Id"] == alice.id
    await client.close()


# --- raw sockets: what no client library sends -------------------------------------------------


async def _raw_eio4(server, token: str):
    ws = await websockets.connect(
        server.url.replace("http", "ws") + f"/tiny.io/?EIO=4&transport=websocket&token={token}"
    )
    assert (await ws.recv()).startswith("0{")
    await ws.send("40")
    assert (await ws.recv()).startswith("40")
    assert (await ws.recv()).startswith('42["hello"')
    return ws, "", ""  # Engine.IO 4: a binary frame is the bytes alone


async def _raw_eio3(server, token: str):
    ws = await websockets.connect(server.url.replace("http", "ws") + "/socket.io/?EIO=3&transport=websocket")
    assert (await ws.recv()).startswith("0{")
    await ws.send(f"40/tiny?token={token},")
    assert await ws.recv() == "40/tiny,"
    assert (await ws.recv()).startswith('42/tiny,["hello"')
    return ws, "/tiny,", "\x04"


async def _closed(ws) -> bool:
    """True once the server ends the session (Engine.IO CLOSE or the websocket closes)."""
    try:
        while True:
            frame = await asyncio.wait_for(ws.recv(), 5)
            if frame == "1":
                return True
    except websockets.ConnectionClosed:
        return True


BAD = {
    "placeholder-out-of-range": [f'451-%s1["echo",{PLACEHOLDER % 1}]', b"x"],
    "placeholder-repeated": [f'452-%s1["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 0}]', b"x", b"y"],
    "placeholder-count-mismatch": ['451-%s1["echo","no placeholder"]', b"x"],
    "placeholder-with-extra-keys": ['451-%s1["echo",{"_placeholder":true,"num":0,"x":1}]', b"x"],
    "attachment-without-packet": [b"x"],
    "attachment-never-sent": [f'452-%s1["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 1}]', b"x", '42%s2["peek"]'],
    "over-the-transport-ceiling": [f'451-%s1["echo",{PLACEHOLDER % 0}]', b"x" * (1024 * 1024)],
}


@pytest.mark.parametrize("transport", ["eio4", "eio3"])
@pytest.mark.parametrize("case", list(BAD))
async def test_malformed_binary_closes_only_its_own_session(server, alice, bob, transport, case):
    bystander = await TinyClient().open(server, bob.access, ["websocket"])
    ws, nsp, prefix = await (_raw_eio4 if transport == "eio4" else _raw_eio3)(server, alice.access)
    for frame in BAD[case]:
        await ws.send(frame % nsp if isinstance(frame, str) else prefix.encode("latin-1") + frame)
    assert await _closed(ws)
    await ws.close()
    assert await bystander.sio.call("echo", (b"fine", "😀"), timeout=5) == (b"fine", "😀")
    await bystander.close()


@pytest.mark.parametrize("transport", ["eio4", "eio3"])
async def test_a_raw_binary_event_in_the_same_framing_is_answered(server, alice, transport):
    """The control for the cases above: the same raw sockets, a well-formed packet."""
    ws, nsp, prefix = await (_raw_eio4 if transport == "eio4" else _raw_eio3)(server, alice.access)
    await ws.send(f'452-{nsp}1["echo",{{"b":{PLACEHOLDER % 1}}},"😀",{PLACEHOLDER % 0}]')
    await ws.send(prefix.encode("latin-1") + b"\x00zero")
    await ws.send(prefix.encode("latin-1") + b"\x01one")
    args = [{"b": {"_placeholder": True, "num": 0}}, "😀", {"_placeholder": True, "num": 1}]
    one, zero = prefix.encode("latin-1") + b"\x01one", prefix.encode("latin-1") + b"\x00zero"
    # `echoed` (a BINARY_EVENT), then the BINARY_ACK, each followed by its attachments in order.
    # python-socketio writes JSON ASCII-only, ours as socket.io does: compared decoded.
    for start, data in ((f"452-{nsp}", ["echoed", args]), (f"462-{nsp}1", args)):
        header = await ws.recv()
        assert header.startswith(start) and json.loads(header[len(start) :]) == data
        assert [await ws.recv(), await ws.recv()] == [one, zero]
    await ws.close()
