"""Eio3Server driven in-process through ASGI websocket messages: the hub seam (connect, greet,
handle, forget and their order), the six transport methods, heartbeat and the bounds.

The live tests (test_eio3_live.py) run the same server under uvicorn with real clients; these
cover what a real client cannot easily provoke (a consumer that stops reading, an exact order).
"""

import asyncio
import json

import pytest

from gateway.transports.eio3 import Eio3Server, codec
from gateway.transports.handshake import Admission, Handshake

PATH = "/v1/conversations/sockets"


class RecordingHub:
    """Admits sockets whose query has `token`; `echo` acks its arguments; `slow` sleeps. Events
    flagged oversize are recorded in `oversized` (the real hub answers them payload_too_large)."""

    def __init__(self, name: str, log: list):
        self.name = name
        self.log = log
        self.transport = None
        self.handshakes: dict[str, Handshake] = {}
        self.greet_delay = 0.0
        self.oversized: list[str] = []

    async def connect(self, conn_id: str, handshake: Handshake) -> Admission:
        self.log.append(("connect", conn_id))
        self.handshakes[conn_id] = handshake
        if self.name != "/" and "token" not in handshake.query:
            return Admission(False, "Authentication Error")
        return Admission(True)

    def lane(self, conn_id, event):
        return None  # no event runs ahead of the connection's earlier ones (gateway/lanes.py)

    async def greet(self, conn_id: str) -> None:
        await asyncio.sleep(self.greet_delay)
        self.log.append(("greet", conn_id))
        await self.transport.send(conn_id, "hello", {"id": conn_id})

    async def handle(self, conn_id: str, event: str, args: list, *, oversize: bool = False) -> list | None:
        self.log.append(("handle", conn_id, event))
        if oversize:
            self.oversized.append(event)
            return ["too large"]
        if event == "slow":
            await asyncio.sleep(args[0])
        if event in ("echo", "slow"):
            return args
        return None

    async def forget(self, conn_id: str) -> None:
        self.log.append(("forget", conn_id))


class WsClient:
    """One websocket connection, as ASGI messages. `blocked` makes the server's sends hang after
    `accept` (a client that stopped reading)."""

    def __init__(
        self, server: Eio3Server, query: str = "EIO=3&transport=websocket", headers=(), blocked=False
    ):
        self.to_server: asyncio.Queue = asyncio.Queue()
        self.from_server: asyncio.Queue = asyncio.Queue()
        self.blocked = blocked
        scope = {
            "type": "websocket",
            "path": PATH + "/",
            "query_string": query.encode(),
            "headers": [(b"host", b"chat.example.com"), *headers],
            "client": ("10.1.2.3", 5555),
        }
        self.to_server.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(server(scope, self.to_server.get, self._send))

    async def _send(self, message):
        if self.blocked and message["type"] == "websocket.send":
            await asyncio.Event().wait()
        await self.from_server.put(message)

    def send(self, text: str) -> None:
        self.to_server.put_nowait({"type": "websocket.receive", "text": text})

    def send_bytes(self, data: bytes) -> None:
        self.to_server.put_nowait({"type": "websocket.receive", "bytes": data})

    async def frame(self, timeout: float = 2) -> str | bytes:
        """The next websocket message, text or bytes."""
        message = await self.recv(timeout)
        assert message["type"] == "websocket.send", message
        return message["text"] if message.get("text") is not None else message["bytes"]

    async def recv(self, timeout: float = 2) -> dict:
        return await asyncio.wait_for(self.from_server.get(), timeout)

    async def text(self, timeout: float = 2) -> str:
        message = await self.recv(timeout)
        assert message["type"] == "websocket.send", message
        return message["text"]

    async def silent(self, seconds: float = 0.15) -> bool:
        try:
            message = await self.recv(seconds)
        except TimeoutError:
            return True
        pytest.fail(f"unexpected {message}")

    async def open(self) -> dict:
        assert (await self.recv())["type"] == "websocket.accept"
        packet = await self.text()
        assert packet[0] == "0"
        return json.loads(packet[1:])

    async def closed(self, timeout: float = 2) -> None:
        while True:
            message = await self.recv(timeout)
            if message["type"] == "websocket.close":
                return

    async def hang_up(self) -> None:
        self.to_server.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 2)


def make_server(*names: str, **options) -> tuple[Eio3Server, dict[str, RecordingHub], list]:
    server = Eio3Server(path=PATH, **{"ping_interval": 5, "ping_timeout": 5, **options})
    log: list = []
    hubs = {}
    for name in names:
        hub = RecordingHub(name, log)
        hub.transport = server.mount(name, hub)
        hubs[name] = hub
    return server, hubs, log


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_open_packet_then_nothing_for_root_when_root_is_not_mounted():
    server, _, log = make_server("/customer")
    client = WsClient(server)
    opened = await client.open()
    assert set(opened) == {"sid", "upgrades", "pingInterval", "pingTimeout"}
    assert opened["upgrades"] == [] and (opened["pingInterval"], opened["pingTimeout"]) == (5000, 5000)
    assert await client.silent()
    assert log == []
    await client.hang_up()


async def test_root_is_connected_implicitly_when_mounted_and_conn_id_is_the_sid():
    server, hubs, log = make_server("/", "/customer")
    client = WsClient(server)
    sid = (await client.open())["sid"]
    assert await client.text() == "40"
    assert await client.text() == f'42["hello",{{"id":"{sid}"}}]'
    assert log == [("connect", sid), ("greet", sid)]
    assert hubs["/"].transport.is_open(sid)


async def test_namespace_connect_merges_the_packet_query_over_the_engine_query():
    server, hubs, _ = make_server("/v1/conversations/events")
    client = WsClient(
        server,
        "EIO=3&transport=websocket&token=engine&lang=fr",
        headers=[(b"user-agent", b"okhttp"), (b"cookie", b"a=1"), (b"cookie", b"b=2")],
    )
    sid = (await client.open())["sid"]
    client.send("40/v1/conversations/events?token=from%20packet&user_id=7,")
    assert await client.text() == "40/v1/conversations/events,"
    conn_id = f"/v1/conversations/events#{sid}"
    handshake = hubs["/v1/conversations/events"].handshakes[conn_id]
    assert handshake.auth is None and handshake.transport == "eio3" and handshake.remote == "10.1.2.3"
    assert handshake.query == {
        "EIO": "3",
        "transport": "websocket",
        "token": "from packet",
        "lang": "fr",
        "user_id": "7",
    }
    assert handshake.headers["user-agent"] == "okhttp" and handshake.headers["cookie"] == "a=1; b=2"


async def test_refused_and_unknown_namespaces_get_error_packets_and_are_not_registered():
    server, hubs, log = make_server("/customer")
    client = WsClient(server)
    sid = (await client.open())["sid"]
    client.send("40/customer,")
    assert await client.text() == '44/customer,"Authentication Error"'
    client.send("40/nope?token=1,")
    assert await client.text() == '44/nope,"Invalid namespace"'
    client.send('42/customer,1["echo","x"]')  # not connected: dropped, no ack
    assert await client.silent()
    assert not hubs["/customer"].transport.is_open(f"/customer#{sid}")
    await client.hang_up()
    await settle()
    assert log == [("connect", f"/customer#{sid}")]  # no greet, no handle, no forget


async def test_greet_runs_after_connect_is_queued_and_before_the_next_packet():
    server, hubs, log = make_server("/customer")
    hubs["/customer"].greet_delay = 0.05
    client = WsClient(server)
    sid = (await client.open())["sid"]
    client.send("40/customer?token=t,")
    client.send('42/customer,1["echo","a",2,{"b":[3]}]')
    assert await client.text() == "40/customer,"
    assert (await client.text()).startswith('42/customer,["hello"')
    assert await client.text() == '43/customer,1["a",2,{"b":[3]}]'
    conn_id = f"/customer#{sid}"
    assert log == [("connect", conn_id), ("greet", conn_id), ("handle", conn_id, "echo")]


async def test_one_client_is_handled_in_order_while_others_run_concurrently():
    server, _, _ = make_server("/customer")
    a, b = WsClient(server), WsClient(server)
    for client in (a, b):
        await client.open()
        client.send("40/customer?token=t,")
        await client.text()
        await client.text()
    a.send('42/customer,1["slow",0.2]')
    a.send('42/customer,2["slow",0]')
    b.send('42/customer,1["slow",0]')
    assert await b.text() == "43/customer,1[0]"  # b is not queued behind a's slow event
    assert a.from_server.empty()
    assert await a.text() == "43/customer,1[0.2]"
    assert await a.text() == "43/customer,2[0]"


async def test_acks_only_for_packets_with_an_id_and_a_result():
    server, _, _ = make_server("/")
    client = WsClient(server)
    await client.open()
    await client.text()
    await client.text()
    client.send('42["echo","no id"]')
    client.send('425["other"]')  # hub returns None
    client.send('426["echo"]')
    assert await client.text() == "436[]"
    assert await client.silent()


async def test_fanout_encodes_once_and_respects_only_and_skip():
    server, hubs, _ = make_server("/customer")
    transport = hubs["/customer"].transport
    clients, ids = [], []
    for _ in range(3):
        client = WsClient(server)
        sid = (await client.open())["sid"]
        client.send("40/customer?token=t,")
        await client.text()
        await client.text()
        clients.append(client)
        ids.append(f"/customer#{sid}")
    a, b, c = ids
    await transport.join_local(a, ["room", "other"])
    await transport.join_local(b, ["room"])
    await transport.join_local(c, ["room"])

    await transport.fanout("room", "news", {"n": 1}, only=None, skip={b})
    got_a, got_c = await clients[0].text(), await clients[2].text()
    assert got_a == '42/customer,["news",{"n":1}]' and got_a is got_c  # the same string object
    assert await clients[1].silent(0.05)

    await transport.fanout("room", "news", 2, only={a, b}, skip=set())
    assert await clients[0].text() == await clients[1].text() == '42/customer,["news",2]'
    assert await clients[2].silent(0.05)

    await transport.leave_local(a, ["room"])
    await transport.fanout("room", "news", 3, only=None, skip=set())
    assert await clients[0].silent(0.05)
    await transport.fanout("other", "news", 4, only=None, skip=set())
    assert await clients[0].text() == '42/customer,["news",4]'
    await transport.fanout("nobody", "news", 5, only=None, skip=set())  # unknown room: nothing

    await clients[0].hang_up()
    assert transport.room_count() == 1  # "other" went with its last member
    await transport.join_local(a, ["room"])  # closed meanwhile: no stale room entry
    await transport.fanout("room", "news", 6, only=None, skip=set())
    assert await clients[1].text() == await clients[2].text()


async def test_server_close_sends_disconnect_and_closes_the_session_after_the_last_namespace():
    server, hubs, log = make_server("/", "/customer")
    client = WsClient(server)
    sid = (await client.open())["sid"]
    assert await client.text() == "40"
    await client.text()
    client.send("40/customer?token=t,")
    assert await client.text() == "40/customer,"
    await client.text()

    await hubs["/customer"].transport.close(f"/customer#{sid}")
    assert await client.text() == "41/customer,"
    assert await client.silent()  # `/` is still open: the session lives
    assert not hubs["/customer"].transport.is_open(f"/customer#{sid}")
    assert hubs["/"].transport.is_open(sid)

    await hubs["/"].transport.close(sid)
    assert await client.text() == "41"
    assert await client.text() == "1"
    await client.closed()
    await client.hang_up()
    await settle()
    assert [entry for entry in log if entry[0] == "forget"] == [
        ("forget", f"/customer#{sid}"),
        ("forget", sid),
    ]
    assert server.sessions == {}


async def test_client_disconnect_packet_forgets_once_and_later_events_are_dropped():
    server, _, log = make_server("/customer")
    client = WsClient(server)
    sid = (await client.open())["sid"]
    client.send("40/customer?token=t,")
    await client.text()
    await client.text()
    client.send("41/customer,")
    client.send('42/customer,1["echo"]')
    assert await client.silent()
    await client.hang_up()
    await settle()
    conn_id = f"/customer#{sid}"
    assert log == [("connect", conn_id), ("greet", conn_id), ("forget", conn_id)]


async def test_transport_close_forgets_every_namespace_once():
    server, _, log = make_server("/", "/customer")
    client = WsClient(server)
    sid = (await client.open())["sid"]
    await client.text()
    await client.text()
    client.send("40/customer?token=t,")
    await client.text()
    await client.text()
    await client.hang_up()
    await settle()
    forgets = sorted(entry[1] for entry in log if entry[0] == "forget")
    assert forgets == sorted([sid, f"/customer#{sid}"])
    assert server.sessions == {}


async def test_ping_is_answered_and_a_silent_client_is_dropped_after_interval_plus_timeout():
    server, _, log = make_server("/", ping_interval=0.2, ping_timeout=0.1)
    client = WsClient(server)
    sid = (await client.open())["sid"]
    await client.text()
    await client.text()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(4):  # pinging every 0.15 s keeps it alive past the 0.3 s deadline
        await asyncio.sleep(0.15)
        client.send("2")
        assert await client.text() == "3"
    assert loop.time() - start > 0.5
    quiet_from = loop.time()
    await client.closed(timeout=1)
    assert 0.25 <= loop.time() - quiet_from <= 0.6
    await settle()
    assert ("forget", sid) in log


async def test_a_client_that_stops_reading_is_dropped_past_max_pending():
    server, hubs, log = make_server("/", max_pending=5)
    client = WsClient(server, blocked=True)
    assert (await client.recv())["type"] == "websocket.accept"
    await settle()
    sid = next(iter(server.sessions))
    transport = hubs["/"].transport
    await asyncio.sleep(0.05)
    assert transport.is_open(sid)
    for n in range(6):  # the writer is stuck on the first send; the queue takes 5
        await transport.send(sid, "n", n)
    assert not transport.is_open(sid) and server.sessions == {}
    await settle()
    assert ("forget", sid) in log
    client.task.cancel()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.receive", "text": '451-["x"]'},
        {"type": "websocket.receive", "text": "461-/customer,1[]"},
        {"type": "websocket.receive", "text": '451-["x",{"_placeholder":true,"num":1}]'},
        {
            "type": "websocket.receive",
            "text": '452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]',
        },
        {"type": "websocket.receive", "text": '451-["x",{"_placeholder":true,"num":0,"n":1}]'},
        {"type": "websocket.receive", "text": '451-["x",{"_placeholder":1,"num":0}]'},
        {"type": "websocket.receive", "text": '451-["x",{"_placeholder":true,"num":true}]'},
        {"type": "websocket.receive", "text": '450-["x"]'},
        {"type": "websocket.receive", "bytes": b"\x04\x00\x01"},
        {"type": "websocket.receive", "bytes": b"\x02\x00\x01"},
        {"type": "websocket.receive", "text": "b4AQI="},
        {"type": "websocket.receive", "text": "b4!!"},
        {"type": "websocket.receive", "text": '42["echo","' + "x" * 2000 + '"]'},
        {"type": "websocket.receive", "text": '42["echo","' + "😀" * 400 + '"]'},  # 1.6 KB in UTF-8
        {"type": "websocket.receive", "text": "4zzz"},
        {"type": "websocket.receive", "text": '42["echo"'},
        {"type": "websocket.receive", "text": "3"},  # pong: v3 clients ping, they never pong
        {"type": "websocket.receive", "text": "9"},
    ],
    ids=[
        "binary-count-mismatch",
        "binary-ack-without-placeholder",
        "placeholder-out-of-range",
        "placeholder-repeated",
        "placeholder-extra-key",
        "placeholder-not-true",
        "placeholder-num-bool",
        "binary-no-attachments",
        "attachment-without-packet",
        "binary-frame-not-a-message",
        "base64-attachment-without-packet",
        "bad-base64",
        "oversize",
        "oversize-utf8",
        "bad-json",
        "truncated",
        "pong",
        "unknown",
    ],
)
async def test_malformed_binary_oversize_and_malformed_input_close_the_session(message, caplog):
    server, _, log = make_server("/", max_payload=1024)
    client = WsClient(server)
    sid = (await client.open())["sid"]
    await client.text()
    await client.text()
    client.to_server.put_nowait(message)
    await client.closed()
    assert server.sessions == {}
    await settle()
    assert ("forget", sid) in log
    assert "xxxx" not in caplog.text and "echo" not in caplog.text  # ids and reasons only


async def test_websocket_for_another_protocol_version_or_origin_is_refused_before_accept():
    server, _, _ = make_server("/", cors_allowed_origins=["https://app.example.com"])
    for query, headers in [
        ("EIO=4&transport=websocket", []),
        ("EIO=3&transport=websocket&sid=unknown", []),
        ("EIO=3&transport=websocket", [(b"origin", b"https://evil.example.com")]),
    ]:
        client = WsClient(server, query, headers=headers)
        assert (await client.recv())["type"] == "websocket.close"
    allowed = WsClient(server, headers=[(b"origin", b"https://app.example.com")])
    await allowed.open()


async def test_origin_defaults_to_the_requests_own_host():
    server, _, _ = make_server("/")
    assert (await WsClient(server, headers=[(b"origin", b"https://elsewhere.com")]).recv())[
        "type"
    ] == "websocket.close"
    await WsClient(server, headers=[(b"origin", b"https://chat.example.com")]).open()


async def test_wants_routes_by_path_and_protocol_version():
    server, _, _ = make_server("/")

    def scope(path: str, query: str, kind: str = "http") -> dict:
        return {"type": kind, "path": path, "query_string": query.encode()}

    assert server.wants(scope(PATH, "EIO=3&transport=polling"))
    assert server.wants(scope(PATH + "/", "EIO=3&transport=polling&t=abc"))
    assert server.wants(scope(PATH + "/", "EIO=3&transport=websocket", "websocket"))
    assert not server.wants(scope(PATH + "/", "EIO=4&transport=polling"))
    assert not server.wants(scope(PATH + "/", "EIO=4&transport=websocket", "websocket"))
    assert not server.wants(scope(PATH + "/", "transport=polling"))
    assert not server.wants(scope("/socket.io/", "EIO=3&transport=polling"))
    assert not server.wants({"type": "lifespan"})
    client = WsClient(server)
    sid = (await client.open())["sid"]
    assert server.wants(scope(PATH + "/", f"transport=polling&sid={sid}"))
    assert not server.wants(scope(PATH + "/", "transport=polling&sid=someone-else"))


async def http_request(
    server: Eio3Server, method: str, query: str, body: bytes = b"", content_type: bytes = b"text/plain"
) -> tuple[int, dict, bytes]:
    """One HTTP request through the ASGI app; the client never hangs up."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list = []

    async def receive():
        if pending:
            return pending.pop()
        await asyncio.Event().wait()

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": PATH + "/",
        "query_string": query.encode(),
        "headers": [(b"host", b"chat.example.com"), (b"content-type", content_type)],
        "client": ("10.1.2.3", 5555),
    }
    await server(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


async def test_polling_upgrade_answers_the_waiting_poll_with_noop_then_moves_the_queue():
    server, hubs, _ = make_server("/customer")
    status, _, body = await http_request(server, "GET", "EIO=3&transport=polling")
    handshake = json.loads(body.decode().split(":", 1)[1][1:])
    assert handshake["upgrades"] == ["websocket"]
    sid = handshake["sid"]
    polling = f"EIO=3&transport=polling&sid={sid}"
    assert (await http_request(server, "POST", polling, b"20:40/customer?token=t,"))[0] == 200
    status, _, body = await http_request(server, "GET", polling)
    assert body.decode().startswith("12:40/customer,")  # and the greeting
    waiting = asyncio.create_task(http_request(server, "GET", polling))
    await settle()
    assert not waiting.done()

    probe = WsClient(server, f"EIO=3&transport=websocket&sid={sid}")
    assert (await probe.recv())["type"] == "websocket.accept"
    probe.send("2probe")
    assert await probe.text() == "3probe"
    assert (await asyncio.wait_for(waiting, 1))[2] == b"1:6"  # noop: the client may pause polling
    probe.send("5")
    await settle()
    await hubs["/customer"].transport.send(f"/customer#{sid}", "after", "upgrade")
    assert await probe.text() == '42/customer,["after","upgrade"]'
    assert (await http_request(server, "GET", polling))[0] == 400  # polling is over for this sid
    probe.send("2")
    assert await probe.text() == "3"


async def test_a_failed_probe_leaves_the_session_on_polling():
    server, _, _ = make_server("/customer")
    _, _, body = await http_request(server, "GET", "EIO=3&transport=polling")
    sid = json.loads(body.decode().split(":", 1)[1][1:])["sid"]
    probe = WsClient(server, f"EIO=3&transport=websocket&sid={sid}")
    assert (await probe.recv())["type"] == "websocket.accept"
    probe.send("4nonsense")
    assert (await probe.recv())["type"] == "websocket.close"
    assert server.sessions[sid].transport == "polling"
    post = await http_request(server, "POST", f"EIO=3&transport=polling&sid={sid}", b"1:2")
    assert post[0] == 200
    assert (await http_request(server, "GET", f"EIO=3&transport=polling&sid={sid}"))[2] == b"1:3"


async def test_requests_it_does_not_want_get_a_400_json_error():
    server, _, _ = make_server("/")
    status, headers, body = await http_request(server, "GET", "EIO=4&transport=polling")
    assert status == 400 and headers[b"content-type"] == b"application/json"
    assert json.loads(body) == {"code": 5, "message": "Unsupported protocol version"}


async def test_a_session_that_joins_no_namespace_is_closed_after_connect_timeout():
    server, _, _ = make_server("/customer", connect_timeout=0.1)
    client = WsClient(server)
    await client.open()
    client.send("40/customer,")  # refused
    assert await client.text() == '44/customer,"Authentication Error"'
    await client.closed(timeout=1)
    assert server.sessions == {}


async def test_inbound_packets_wait_for_room_and_stay_in_order():
    server, hubs, log = make_server("/", max_inbound=2)
    release = asyncio.Event()

    async def handle(conn_id, event, args, *, oversize=False):
        log.append(("handle", conn_id, event, args[0]))
        await release.wait()
        return args

    hubs["/"].handle = handle
    client = WsClient(server)
    sid = (await client.open())["sid"]
    await client.text()
    await client.text()
    for n in range(6):
        client.send(f'42{n}["e",{n}]')
    await asyncio.sleep(0.05)
    session = server.sessions[sid]
    # 0 is in the hub, 1 and 2 wait in the inbox, the reader holds 3: 4 and 5 are not even read.
    assert len(session.inbox._items) == 2 and client.to_server.qsize() == 2
    release.set()
    assert [await client.text() for _ in range(6)] == [f"43{n}[{n}]" for n in range(6)]
    assert [entry[3] for entry in log if entry[0] == "handle"] == list(range(6))


async def test_close_all_drops_every_session():
    server, _, log = make_server("/")
    clients = [WsClient(server) for _ in range(3)]
    for client in clients:
        await client.open()
    await settle()
    await server.close_all()
    for client in clients:
        await client.closed()
    assert server.sessions == {}


async def test_lifespan_shutdown_drops_every_session():
    server, _, _ = make_server("/")
    client = WsClient(server)
    await client.open()
    messages = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        messages.put_nowait({"type": kind})
    sent: list = []

    async def send(message):
        sent.append(message["type"])

    await server({"type": "lifespan"}, messages.get, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    await client.closed()
    assert server.sessions == {}


# --- binary ------------------------------------------------------------------------------------

PLACEHOLDER = '{"_placeholder":true,"num":%d}'


async def connected(server, query: str = "EIO=3&transport=websocket") -> tuple[WsClient, str]:
    client = WsClient(server, query)
    sid = (await client.open())["sid"]
    assert await client.text() == "40"
    assert (await client.text()).startswith('42["hello"')
    return client, sid


async def test_binary_event_round_trips_over_websocket_binary_frames():
    server, hubs, log = make_server("/")
    client, sid = await connected(server)
    client.send(f'452-7["echo",{PLACEHOLDER % 1},{{"nested":[{PLACEHOLDER % 0},"😀"]}}]')
    client.send_bytes(b"\x04" + b"\x00first")
    client.send_bytes(b"\x04" + b"\xffsecond")
    # The hub got bytes in place of the placeholders; its ack (the same arguments) goes back as
    # a BINARY_ACK header and one `\x04` binary frame per attachment, in order.
    assert await client.frame() == f'462-7[{PLACEHOLDER % 0},{{"nested":[{PLACEHOLDER % 1},"😀"]}}]'
    assert await client.frame() == b"\x04\xffsecond"
    assert await client.frame() == b"\x04\x00first"
    assert log[-1] == ("handle", sid, "echo")
    await hubs["/"].transport.send(sid, "pic", {"png": b"\x89PNG"})
    assert await client.frame() == f'451-["pic",{{"png":{PLACEHOLDER % 0}}}]'
    assert await client.frame() == b"\x04\x89PNG"
    assert server.sessions[sid].pending is None


async def test_binary_event_round_trips_as_base64_text_for_b64_clients():
    server, _, _ = make_server("/")
    client, _ = await connected(server, "EIO=3&transport=websocket&b64=1")
    client.send(f'451-1["echo",{PLACEHOLDER % 0}]')
    client.send("b4" + "AAH/")  # b"\x00\x01\xff"
    assert await client.frame() == f"461-1[{PLACEHOLDER % 0}]"
    assert await client.frame() == "b4AAH/"


async def test_binary_over_polling_binary_payload_and_base64_text():
    server, _, _ = make_server("/")
    for b64, content_type in (("", b"application/octet-stream"), ("&b64=1", b"text/plain; charset=UTF-8")):
        _, _, body = await http_request(server, "GET", "EIO=3&transport=polling" + b64)
        sid = json.loads(body.decode().split(":", 1)[1][1:])["sid"]
        polling = f"EIO=3&transport=polling&sid={sid}"
        while b"hello" not in (await http_request(server, "GET", polling))[2]:
            pass
        header = f'451-3["echo","é",{PLACEHOLDER % 0}]'
        post = codec.encode_binary_payload([header, b"\x00\xfe"])
        assert (await http_request(server, "POST", polling, post, b"application/octet-stream"))[0] == 200
        status, headers, body = await http_request(server, "GET", polling)
        assert status == 200 and headers[b"content-type"] == content_type
        ack = f'461-3["é",{PLACEHOLDER % 0}]'
        if b64:
            assert codec.decode_payload(body.decode(), max_packet=1000) == [ack, "b4AP4="]
        else:
            assert codec.decode_binary_payload(body, max_packet=1000) == [ack, b"\x00\xfe"]
        # A b64 client posts text with `b4<base64>` frames; answered the same way.
        post = codec.encode_payload([f'451-4["echo",{PLACEHOLDER % 0}]', "b4AQ=="]).encode()
        assert (await http_request(server, "POST", polling, post))[0] == 200
        body = (await http_request(server, "GET", polling))[2]
        packets = (
            codec.decode_payload(body.decode(), max_packet=1000)
            if b64
            else codec.decode_binary_payload(body, max_packet=1000)
        )
        assert packets == [f"461-4[{PLACEHOLDER % 0}]", "b4AQ==" if b64 else b"\x01"]


async def test_too_many_attachments_are_read_but_answered_oversize_and_the_session_stays():
    server, hubs, _ = make_server("/", max_attachments=2)
    client, sid = await connected(server)
    placeholders = ",".join(PLACEHOLDER % n for n in range(3))
    client.send(f'453-1["echo",{placeholders}]')
    for n in range(3):
        client.send_bytes(b"\x04" + bytes([n]))
        assert server.sessions[sid].pending is None or server.sessions[sid].pending[1].held == 0
    assert await client.frame() == '431["too large"]'
    assert hubs["/"].oversized == ["echo"]
    client.send('422["echo","still here"]')
    assert await client.frame() == '432["still here"]'


async def test_attachments_over_the_event_limit_are_dropped_as_they_come_then_answered_oversize():
    server, hubs, _ = make_server("/", max_payload=4096, event_limit=1000)
    client, sid = await connected(server)
    client.send(f'453-1["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 1},{PLACEHOLDER % 2}]')
    held = []
    for _ in range(3):
        client.send_bytes(b"\x04" + b"x" * 600)
        await settle()
        pending = server.sessions[sid].pending
        held.append(pending[1].held if pending else None)
    assert held == [600, 0, None]  # the second one passed the limit: nothing is held after it
    assert await client.frame() == '431["too large"]'
    assert hubs["/"].oversized == ["echo"]


async def test_a_binary_packet_over_the_transport_ceiling_closes_the_session_without_buffering_it():
    # The guarantee behind "no 100 MB buffers": a header may announce attachments, but what is
    # held is bounded by the event limit, and the whole packet by max_payload, however many
    # attachments it claims (and each frame by max_payload).
    server, hubs, log = make_server("/", max_payload=4096, event_limit=1000, max_attachments=100)
    client, sid = await connected(server)
    placeholders = ",".join(PLACEHOLDER % n for n in range(100))
    client.send(f'45100-1["echo",{placeholders}]')
    for _ in range(5):
        client.send_bytes(b"\x04" + b"x" * 1000)  # the fifth passes 4096 with the header
    await client.closed()
    assert server.sessions == {} and hubs["/"].oversized == []
    await settle()
    assert ("forget", sid) in log
    client2, _ = await connected(server)
    client2.send_bytes(b"\x04" + b"x" * 4097)  # one frame over max_payload
    await client2.closed()


@pytest.mark.parametrize("then", ["text", "hang-up"])
async def test_a_binary_packet_whose_attachments_never_come_is_dropped_with_the_session(then):
    server, hubs, log = make_server("/")
    client, sid = await connected(server)
    client.send(f'452-1["echo",{PLACEHOLDER % 0},{PLACEHOLDER % 1}]')
    client.send_bytes(b"\x04first")
    await settle()
    session = server.sessions[sid]
    assert session.pending is not None and session.pending[1].held == len("first")
    if then == "text":  # the client went on as if the packet were complete: framing lost
        client.send('42["echo"]')
        await client.closed()
    else:
        await client.hang_up()
    await settle()
    assert session.pending is None and server.sessions == {}
    assert [entry for entry in log if entry[0] == "handle"] == []
    assert ("forget", sid) in log


async def test_an_event_to_an_idle_websocket_is_written_before_send_returns_and_after_what_is_queued():
    server, hubs, _ = make_server("/")
    client = WsClient(server)
    sid = (await client.open())["sid"]
    assert await client.text() == "40" and (await client.text()).startswith('42["hello"')
    await settle()
    transport = hubs["/"].transport
    await transport.send(sid, "now", 1)
    assert client.from_server.qsize() == 1  # written directly: no writer task ran in between
    assert await client.text() == '42["now",1]'
    session = server.sessions[sid]
    session.enqueue(codec.encode_event("/", "queued", [2]))  # as acks and pongs are queued
    await transport.send(sid, "after", 3)
    assert await client.text() == '42["queued",2]' and await client.text() == '42["after",3]'
    await client.hang_up()


async def test_a_write_the_server_suspends_holds_up_neither_the_fanout_nor_the_order():
    server, hubs, _ = make_server("/")
    slow, other = WsClient(server), WsClient(server)
    slow_sid, other_sid = (await slow.open())["sid"], (await other.open())["sid"]
    for client in (slow, other):
        assert await client.text() == "40" and (await client.text()).startswith('42["hello"')
    await settle()
    transport = hubs["/"].transport
    await transport.join_local(slow_sid, ["room"])
    await transport.join_local(other_sid, ["room"])
    slow.blocked = True  # the server paused writing to it: it reads slowly
    await asyncio.wait_for(transport.fanout("room", "n", 1, only=None, skip=set()), 1)
    assert await other.text() == '42["n",1]'  # not held up by the slow one
    await transport.fanout("room", "n", 2, only=None, skip=set())
    assert await other.text() == '42["n",2]'
    assert len(server.sessions[slow_sid].outbox) == 1  # queued behind the suspended write
    await other.hang_up()
    slow.task.cancel()
