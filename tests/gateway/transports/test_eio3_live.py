"""The Socket.IO 2 transport under uvicorn (`--ws gateway.transports.uvicorn_ws:WebSocketProtocol`, as `make run`), driven by the real npm
socket.io-client 2.3.1, raw HTTP polling, a raw websocket and python-socketio 5's client.

The server is tests/gateway/transports/eio3_app.py (Eio3Server + fake hubs), started once for
the module with short pings (interval 1 s, timeout 1 s: a silent session is dropped after 2 s).
js/eio3_client.mjs prints what the client saw as JSON lines; the assertions are here.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import socketio
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from gateway.transports.eio3 import codec
from tests.conftest import require_node_package

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).resolve().parent / "js" / "eio3_client.mjs"
NODE = shutil.which("node")
SCRIPT_LIMIT = 25  # seconds; the script stops itself after 15
ENGINE = "/v1/conversations/sockets/"
EMOJI = 'héllo 😀👍🏽 — 漢字 \u2028 "quoted" \\ end'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("eio3") / "uvicorn.log"
    env = {
        **os.environ,
        "EIO3_PING_INTERVAL": "1",
        "EIO3_PING_TIMEOUT": "1",
        "EIO3_MAX_PAYLOAD": str(64 * 1024),
        "EIO3_MAX_HTTP_BODY": str(128 * 1024),
        "EIO3_MAX_PENDING": "1000",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.gateway.transports.eio3_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "gateway.transports.uvicorn_ws:WebSocketProtocol",
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.time() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"test server exited:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"test server did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


# --- the npm client ----------------------------------------------------------------------------


class Run:
    def __init__(self, records: list[dict[str, Any]]):
        self.records = records

    def events(self, client: str = "A") -> list[tuple[str, Any]]:
        return [
            (r["event"], r["data"]) for r in self.records if r["kind"] == "event" and r["client"] == client
        ]

    def names(self, client: str = "A") -> list[str]:
        return [name for name, _ in self.events(client)]

    def first(self, event: str, client: str = "A") -> Any:
        return next(data for name, data in self.events(client) if name == event)

    def acks(self, client: str = "A") -> list[tuple[str, Any, str]]:
        return [
            (r["event"], r["data"], r["transport"])
            for r in self.records
            if r["kind"] == "ack" and r["client"] == client
        ]

    def engine(self, client: str = "A") -> list[tuple[str, str]]:
        return [
            (r["event"], r["transport"])
            for r in self.records
            if r["kind"] == "engine" and r["client"] == client
        ]


@pytest.fixture
def node_client():
    require_node_package("socket.io-client-v2", "2.3.1")
    return True


def run_script(scenario: str, url: str, **env: str) -> Run:
    completed = subprocess.run(
        [NODE, str(SCRIPT), scenario, url],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=SCRIPT_LIMIT,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"node {SCRIPT.name} {scenario} exited {completed.returncode}\n"
            f"stderr:\n{completed.stderr[-3000:]}\nstdout:\n{completed.stdout[-3000:]}"
        )
    records = [
        json.loads(line) for line in completed.stdout.split("\n") if line.strip()
    ]  # not splitlines: U+2028
    assert records[-1]["kind"] == "done"
    return Run(records)


def state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_state", timeout=5) as response:
        return json.loads(response.read())


def forgotten(url: str, conn_id: str, timeout: float = 3) -> int:
    """How many times the hub forgot `conn_id`, once it has at least once (or the timeout)."""
    deadline = time.time() + timeout
    while True:
        count = state(url)["forgets"].count(conn_id)
        if count or time.time() > deadline:
            return count
        time.sleep(0.05)


def test_websocket_only_on_custom_path_and_namespace_with_query(server, node_client):
    run = run_script("custom-ws", server)
    assert run.engine() == [("open", "websocket")]
    assert run.names() == ["connect", "welcome", "disconnect"]
    welcome = run.first("welcome")
    assert welcome["conn_id"].startswith("/v1/conversations/events#")
    assert {k: welcome[k] for k in ("nsp", "token", "user_id", "transport", "auth")} == {
        "nsp": "/v1/conversations/events",
        "token": "tok-1",
        "user_id": "u-42",
        "transport": "eio3",
        "auth": None,
    }
    assert run.acks() == [("echo", ["one", 2, {"three": [3, EMOJI]}, None, True], "websocket")]
    assert run.first("disconnect") == "io client disconnect"
    assert forgotten(server, welcome["conn_id"]) == 1


def test_polling_only_carries_emoji_and_acks_in_the_order_sent(server, node_client):
    run = run_script("polling", server)
    assert run.engine() == [("open", "polling")]
    acks = run.acks()
    assert acks[0] == ("echo", [EMOJI, EMOJI * 200], "polling")
    assert acks[1:] == [("slow", [60], "polling"), ("slow", [0], "polling"), ("slow", [30], "polling")]
    assert forgotten(server, run.first("welcome")["conn_id"]) == 1


def test_polling_upgrades_to_websocket(server, node_client):
    run = run_script("upgrade", server)
    assert run.engine() == [("open", "polling"), ("upgrade", "websocket")]
    assert run.names() == ["connect", "welcome", "disconnect"]
    assert run.acks() == [("echo", [EMOJI], "websocket")]


@pytest.mark.parametrize("transports", ["", "websocket"], ids=["default", "websocket"])
def test_refused_namespace_raises_error_event_with_the_hubs_reason(server, node_client, transports):
    before = state(server)["refused"]
    run = run_script("refused", server, TRANSPORTS=transports)
    assert run.names() == ["error"]  # never connected
    assert run.first("error") == "Authentication Error"
    assert len(state(server)["refused"]) == len(before) + 1


def test_unknown_namespace_raises_invalid_namespace(server, node_client):
    run = run_script("unknown", server, TRANSPORTS="websocket")
    assert run.events() == [("error", "Invalid namespace")]


def test_root_namespace_is_connected_without_a_connect_packet(server, node_client):
    run = run_script("root", server)
    assert run.names() == ["connect", "welcome", "disconnect"]
    assert run.first("welcome")["nsp"] == "/"
    assert run.acks()[0][:2] == ("echo", ["root"])


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_server_side_close_is_io_server_disconnect_and_forgets_once(server, node_client, transports):
    run = run_script("server-close", server, TRANSPORTS=transports)
    assert run.names() == ["connect", "welcome", "disconnect"]
    assert run.first("disconnect") == "io server disconnect"
    conn_id = run.first("welcome")["conn_id"]
    assert forgotten(server, conn_id) == 1


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_fanout_reaches_the_room_in_one_namespace_except_the_sender(server, node_client, transports):
    run = run_script("fanout", server, TRANSPORTS=transports)
    assert run.acks("A") == [("shout", ["ok"], transports)]
    assert [data for name, data in run.events("B") if name == "shouted"] == [{"text": EMOJI}]
    assert "shouted" not in run.names("A") and "shouted" not in run.names("C")


# --- raw polling -------------------------------------------------------------------------------


def http(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_raw_polling_frames_lengths_in_utf16_units(server):
    status, headers, body = http(f"{server}{ENGINE}?EIO=3&transport=polling&b64=1&t=1")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert "set-cookie" not in {k.lower() for k in headers}  # no `io` cookie
    (opened, *rest) = codec.decode_payload(body.decode(), max_packet=10_000)
    handshake = json.loads(opened[1:])
    assert (handshake["upgrades"], handshake["pingInterval"], handshake["pingTimeout"]) == (
        ["websocket"],
        1000,
        1000,
    )
    sid = handshake["sid"]
    base = f"{server}{ENGINE}?EIO=3&transport=polling&sid={sid}"

    event = f'42/customer,1["echo",{json.dumps(EMOJI, ensure_ascii=False)}]'
    post = codec.encode_payload(["40/customer?token=t,", event]).encode()
    assert http(base, "POST", post, {"content-type": "text/plain;charset=UTF-8"})[:1] == (200,)
    received: list[str] = list(rest)
    bodies = ""
    while not any(p.startswith("43/customer,1") for p in received):
        status, _, body = http(base)
        assert status == 200
        bodies += body.decode()
        received += codec.decode_payload(body.decode(), max_packet=100_000)
    ack = next(p for p in received if p.startswith("43/customer,1"))
    assert json.loads(ack[len("43/customer,1") :]) == [EMOJI]
    # Framed with the JavaScript String length (UTF-16 units), not code points or bytes.
    assert codec.utf16_length(ack) == len(ack) + 3 != len(ack.encode())  # three astral emoji
    assert f"{len(ack) + 3}:{ack}" in bodies
    assert "40/customer," in received
    assert http(base, "POST", b"1:1")[0] == 200  # engine close


@pytest.mark.parametrize("b64", [False, True], ids=["binary-payload", "b64"])
def test_raw_polling_carries_binary_events_both_ways(server, b64):
    """What a browser's XHR2 client does (binary polling payloads, `application/octet-stream`),
    and what a client without binary does (`b64=1`: `b4<base64>` packets in the text framing)."""
    base = f"{server}{ENGINE}?EIO=3&transport=polling" + ("&b64=1" if b64 else "")
    sid = json.loads(codec.decode_payload(http(base)[2].decode(), max_packet=10_000)[0][1:])["sid"]
    session = f"{server}{ENGINE}?EIO=3&transport=polling&sid={sid}"  # b64 is the handshake's
    placeholder = {"_placeholder": True, "num": 0}
    header = "451-/customer,1" + json.dumps(["echo", EMOJI, {"file": placeholder}], ensure_ascii=False)
    if b64:
        body, content_type = (
            codec.encode_payload(["40/customer?token=t,", header, "b4AP8A"]).encode(),
            "text/plain",
        )
    else:
        body = codec.encode_binary_payload(["40/customer?token=t,", header, b"\x00\xff\x00"])
        content_type = "application/octet-stream"
    posted = http(session, "POST", body, {"content-type": content_type})
    assert posted[0] == 200, posted
    received: list = []
    while not any(isinstance(p, str) and p.startswith("461-/customer,1") for p in received):
        status, headers, body = http(session)
        assert status == 200
        if headers["content-type"] == "application/octet-stream":
            received += codec.decode_binary_payload(body, max_packet=100_000)
        else:
            received += codec.decode_payload(body.decode(), max_packet=100_000)
    ack = next(i for i, p in enumerate(received) if isinstance(p, str) and p.startswith("461-/customer,1"))
    assert json.loads(received[ack][len("461-/customer,1") :]) == [
        EMOJI,
        {"file": {"_placeholder": True, "num": 0}},
    ]
    assert received[ack + 1] == ("b4AP8A" if b64 else b"\x00\xff\x00")
    assert http(session, "POST", b"1:1")[0] == 200  # engine close


def test_polling_limits_and_refusals(server):
    base = f"{server}{ENGINE}?EIO=3&transport=polling"
    status, _, body = http(base)
    sid = json.loads(codec.decode_payload(body.decode(), max_packet=10_000)[0][1:])["sid"]
    session = f"{base}&sid={sid}"
    status, _, body = http(session, "POST", b"x" * (128 * 1024 + 1))
    assert status == 413
    assert http(session)[0] == 400  # the oversize body ended the session
    assert json.loads(http(session)[2]) == {"code": 1, "message": "Session ID unknown"}
    assert http(f"{base}&j=0")[0] == 400  # JSONP
    assert http(f"{server}{ENGINE}?EIO=3&transport=flash")[0] == 400
    status, _, body = http(f"{server}{ENGINE}?EIO=3&transport=polling", "POST", b"1:2")
    assert (status, json.loads(body)["code"]) == (400, 2)  # a handshake must be a GET


def test_malformed_polling_body_closes_the_session(server):
    base = f"{server}{ENGINE}?EIO=3&transport=polling"
    sid = json.loads(codec.decode_payload(http(base)[2].decode(), max_packet=10_000)[0][1:])["sid"]
    session = f"{base}&sid={sid}"
    assert http(session, "POST", b"5:42[x")[0] == 400
    assert json.loads(http(session)[2])["code"] == 1


def test_origin_allow_list_and_cors_preflight(server):
    base = f"{server}{ENGINE}?EIO=3&transport=polling"
    assert http(base, headers={"Origin": "https://evil.example.com"})[0] == 403
    status, headers, _ = http(base, headers={"Origin": "https://app.example.com"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-credentials"] == "true"
    status, headers, _ = http(
        base,
        "OPTIONS",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert status == 204
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-allow-headers"] == "content-type"
    assert http(base, "OPTIONS", headers={"Origin": "https://evil.example.com"})[0] == 403


# --- raw websocket -----------------------------------------------------------------------------


@contextmanager
def ws_open(url: str, namespace: str | None = None):
    """A raw Engine.IO 3 websocket, connected to `/` (implicitly) and `namespace` if given."""
    with ws_connect(url.replace("http", "ws") + ENGINE + "?EIO=3&transport=websocket", open_timeout=5) as ws:
        opened = ws.recv(timeout=2)
        assert opened[0] == "0"
        sid = json.loads(opened[1:])["sid"]
        assert ws.recv(timeout=2) == "40"  # `/` is mounted
        assert ws.recv(timeout=2).startswith('42["welcome"')
        if namespace:
            ws.send(f"40{namespace}?token=t,")
            assert ws.recv(timeout=2) == f"40{namespace},"
            assert ws.recv(timeout=2).startswith(f'42{namespace},["welcome"')
        yield ws, sid


def wait_closed(ws, timeout: float) -> float:
    """Read until the server closes; returns the seconds it took."""
    start = time.monotonic()
    with pytest.raises(ConnectionClosed):
        while time.monotonic() - start < timeout:
            ws.recv(timeout=timeout)
    return time.monotonic() - start


def test_client_that_stops_pinging_is_dropped_after_interval_plus_timeout(server):
    with ws_open(server) as (pinging, _), ws_open(server) as (silent, sid):
        _heartbeat(server, pinging, silent, sid)


def _heartbeat(server, pinging, silent, sid) -> None:
    start = time.monotonic()
    while time.monotonic() - start < 2.6:  # longer than the 2 s deadline
        pinging.send("2")
        assert pinging.recv(timeout=2) == "3"
        time.sleep(0.5)
    elapsed = wait_closed(silent, timeout=3)
    assert time.monotonic() - start < 3.2 and elapsed < 1  # closed at ~2 s, while we pinged the other
    assert forgotten(server, sid) == 1
    pinging.send("2probe")  # any ping is answered in kind
    assert pinging.recv(timeout=2) == "3probe"


PLACEHOLDER = '{"_placeholder":true,"num":%d}'


@pytest.mark.parametrize(
    "frames",
    [
        ['451-/customer,["upload"]'],  # announces an attachment it has no placeholder for
        [b"\x04\x01\x02"],  # an attachment nobody announced
        ["b4AQI="],  # the same as base64 text
        ["4" + "2" * 70_000],  # one packet over max_payload (64 KiB)
        # Three attachments of 30 KB, each under max_payload, together over it: the packet and its
        # attachments are one payload, so the session ends at the third and nothing more is held
        # (no 100 MB buffers, however many attachments a header announces).
        [f'453-/customer,["upload",{PLACEHOLDER % 0},{PLACEHOLDER % 1},{PLACEHOLDER % 2}]']
        + [b"\x04" + b"x" * 30_000] * 3,
    ],
    ids=["binary-without-placeholder", "binary-frame", "base64-frame", "oversize", "oversize-binary"],
)
def test_malformed_binary_and_oversize_packets_close_the_session(server, frames):
    with ws_open(server, "/customer") as (ws, sid):
        for frame in frames:
            ws.send(frame)
        wait_closed(ws, timeout=2)
    assert forgotten(server, f"/customer#{sid}") == 1
    assert forgotten(server, sid) == 1


def test_binary_event_and_ack_over_a_raw_websocket(server):
    with ws_open(server, "/customer") as (ws, _):
        ws.send(f'451-/customer,5["echo","😀",{{"b":{PLACEHOLDER % 0}}}]')
        ws.send(b"\x04\x00\xff")
        assert ws.recv(timeout=2) == f'461-/customer,5["😀",{{"b":{PLACEHOLDER % 0}}}]'
        assert ws.recv(timeout=2) == b"\x04\x00\xff"


def test_outbound_queue_is_bounded_per_session(server):
    with ws_open(server, "/customer") as (ws, _):
        ws.send('42/customer,["flood",100]')
        assert [ws.recv(timeout=2) for _ in range(100)][-1] == '42/customer,["flood",99]'
        ws.send('42/customer,["flood",1500]')  # queued at once: over max_pending (1000)
        wait_closed(ws, timeout=3)


# --- Engine.IO 4 is somebody else's ------------------------------------------------------------


def test_python_socketio_5_client_is_not_handled_here(server):
    before = state(server)["sessions"]

    async def attempt() -> None:
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(server, socketio_path=ENGINE.strip("/"), wait_timeout=3)
        await client.disconnect()

    asyncio.run(attempt())
    # The test app answers requests the Eio3Server does not want with 404 (the real dispatcher
    # sends them to python-socketio 5).
    assert http(f"{server}{ENGINE}?EIO=4&transport=polling")[0] == 404
    assert state(server)["sessions"] == before
