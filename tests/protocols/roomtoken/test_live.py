"""Seed 002 against live server processes with the real npm socket.io-client 2.3.1: the README
flow with the customer on one process and the artisan on another (Redis between them), a
stranger with a guessed room token, both namespaces, presence, refused and revoked handles,
and a room in which an ExpressChat client of the same app takes part; the REST history of the
flow afterwards."""

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, _start_servers, require_redis
from tests.tenants.helpers import sign

from .conftest import NODE, ROOT, node_required

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(__file__).resolve().parent / "js" / "roomtoken_clients.mjs"
# The malformed-payload sweep sends ~200 events at once: above the default bursts, whose drops
# are silent too and would hide what the handlers do.
ENV = {
    "CHAT_PRESENCE_DEBOUNCE_SECONDS": "0.2",
    "CHAT_SOCKET_RATE_BURST": "400",
    "CHAT_USER_RATE_BURST": "400",
}


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two server processes sharing the database and Redis (one without Redis: skipped)."""
    node_required()
    require_redis()
    pair = _start_servers(2, tmp_path_factory.mktemp("roomtoken"), REDIS_URL, ENV)
    yield pair
    for server in pair:
        server.stop()


def run(scenario: str, servers, market, **extra) -> list[dict]:
    _app, customer, artisan, stranger = market
    config = {
        "scenario": scenario,
        "urlA": servers[0].url,
        "urlB": servers[1].url,
        "customer": customer.wire(),
        "artisan": artisan.wire(),
        "stranger": stranger.wire(),
        **extra,
    }
    done = subprocess.run(
        [NODE, str(SCRIPT), json.dumps(config)], capture_output=True, text=True, timeout=70, cwd=ROOT
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, (done.returncode, records[-8:], done.stderr[-2000:])
    assert records[-1] == {"kind": "done"}
    return records


def step(records, name):
    return next(r for r in records if r.get("step") == name)


def history(server, query: dict, *, headers: dict | None = None, path: str = "/v1/chat/") -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{server.url}{path}?{urllib.parse.urlencode(query)}", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def room_doc(joined: dict) -> dict:
    assert joined["success"] is True and joined["message"] == "Joined successfully", joined
    return joined["data"]["room"]


def test_readme_flow_across_two_processes(servers, market):
    _app, customer, artisan, stranger = market
    records = run("flow", servers, market)
    c, a = customer, artisan

    boot = step(records, "customer-bootstrap")
    assert boot["rooms"] == {"event": "list-room", "success": True, "succus": True, "data": {"rooms": []}}
    assert boot["online"]["data"] == {"users": [{"userId": c.handle}]}
    # The registry's heartbeat reaches the client (it adopts the server's values).
    assert boot["engine"] == {"pingInterval": 25000, "pingTimeout": 60000}

    requested = step(records, "requested")
    mine = room_doc(requested["joined"])
    assert {k: mine[k] for k in ("customerID", "vendorID", "roomID", "roomToken", "namespace")} == {
        "customerID": c.handle,  # the client sees itself by its own userId
        "vendorID": "a1",
        "roomID": "r-1",
        "roomToken": "tok-1",
        "namespace": "customer",
    }
    for key in ("request", "request2"):  # both artisan tabs, each seeing itself by its handle
        theirs = room_doc(requested[key])
        assert theirs["_id"] == mine["_id"] and (theirs["customerID"], theirs["vendorID"]) == ("c1", a.handle)
    early = requested["early"]
    assert (early["message"], early["senderId"], early["receiverId"]) == ("before accept", c.handle, "a1")

    accepted = step(records, "accepted")
    assert room_doc(accepted["acceptJoined"])["vendorID"] == a.handle
    assert room_doc(accepted["accepted"]) == mine  # to the requester, who sees itself

    talk = step(records, "talk")
    assert list(talk["hiC"]) == ["_id", "message", "message_type", "senderId", "receiverId", "room_id", "dt"]
    assert (talk["hiC"]["senderId"], talk["hiC"]["receiverId"]) == ("a1", c.handle)
    # A vendor's message carries receiverId (spec §8.8); the sender's own copy names it by its handle.
    assert (talk["hiA"]["senderId"], talk["hiA"]["receiverId"]) == (a.handle, "c1")
    assert talk["hiA2"] == talk["hiA"] and talk["hiA"]["room_id"] == mine["_id"]
    assert talk["hiC"]["dt"].endswith("Z") and len(talk["hiC"]["dt"]) == 24
    assert (
        talk["imageA"]["message_type"] == "image" and talk["imageA"]["message"] == "https://cdn.example/p.png"
    )
    assert talk["imageC"]["_id"] == talk["imageA"]["_id"]

    typing = step(records, "typing")
    expected_typing = {"userId": "c1", "roomID": "r-1", "success": True, "typing": True}
    assert typing["first"] == typing["second"] == expected_typing

    strange = step(records, "stranger")
    assert strange["strangerJoined"] == {"success": False, "message": "You are not a member of this rooms"}
    assert strange["claimed"] == {"success": False, "message": "Invalid Customer id"}
    assert room_doc(strange["own"])["roomToken"] == "tok-s"

    left = step(records, "leave")
    assert left["ack"] == {"success": True, "message": "leave successfully", "roomToken": "tok-1"}
    assert left["leftC"] == {"user": {"_id": "a1", "customer": True}}  # the room says so
    assert left["leaveToArtisan"] == 0  # the leaver's sockets are out of the room
    assert room_doc(left["rejoined"])["vendorID"] == a.handle
    # Nothing reached either artisan tab while away (the leaving one and the other one).
    assert left["back"]["message"] == left["back2"]["message"] == "back"

    spaces = step(records, "namespaces")
    assert spaces["otherBoot"]["rooms"]["data"]["rooms"] == []  # /customer's room is not listed here
    other = room_doc(spaces["otherJoined"])
    assert other["namespace"] == "artisans" and other["_id"] != mine["_id"]

    presence = step(records, "presence")
    assert presence["offline"] == {"userId": "a1", "event": "offline"}
    assert presence["afterOffline"]["online"]["data"] == {"users": [{"userId": c.handle}]}
    assert presence["online"] == {"userId": "a1", "event": "online"}
    listed = presence["againBoot"]["rooms"]["data"]["rooms"]
    # Requests waiting for the artisan are listed too (the stranger's own room).
    assert [(r["roomToken"], r["customerID"], r["vendorID"]) for r in listed] == [
        ("tok-1", "c1", a.handle),
        ("tok-s", "s1", a.handle),
    ]
    assert {"userId": "c1"} in presence["againBoot"]["online"]["data"]["users"]

    # History: oldest first, pages of `limit`, the caller seeing itself by the id it presented.
    texts = ["before accept", "hi there", "https://cdn.example/p.png", *[f"n{i}" for i in range(1, 7)]]
    texts += ["while away", "back"]
    query = {"roomToken": "tok-1", "namespace": "customer", "limit": 5, "userId": c.handle}
    pages = [history(servers[1], query | {"page": page}) for page in (1, 2, 3, 4)]
    assert [status for status, _body in pages] == [200] * 4
    assert all(body["message"] == "chat" for _status, body in pages)
    got = [m["message"] for _status, body in pages for m in body["data"]]
    # Neither the spoof nor what the artisan wrote after leaving was stored.
    assert got == texts and pages[3][1]["data"] == []
    first = pages[0][1]["data"][1]
    assert (first["senderId"], first["receiverId"], first["room_id"]) == ("a1", c.handle, mine["_id"])
    status, as_artisan = history(
        servers[0],
        {"roomToken": "tok-1", "namespace": "customer"},
        headers={"Authorization": f"Bearer {a.handle}"},
    )
    # Default limit 20; back in the room, the artisan reads what was written while away.
    assert status == 200 and len(as_artisan["data"]) == 11
    assert as_artisan["data"][9]["message"] == "while away"
    assert as_artisan["data"][0]["receiverId"] == a.handle
    # Same without the slash; a stranger, the other namespace's room and no credential.
    assert history(servers[0], query | {"userId": stranger.handle}, path="/v1/chat") == (
        200,
        {"message": "chat", "data": []},
    )
    assert history(servers[0], query | {"namespace": "artisans"})[1]["data"] == []
    status, body = history(servers[0], {"roomToken": "tok-1", "namespace": "customer"})
    assert (status, body) == (401, {"code": 401, "message": "User Id is required", "success": False})


def test_refused_and_revoked_handles(servers, market):
    app, customer, artisan, stranger = market
    from accounts import tenancy

    revoked = tenancy.id_handle_issue(app=app, external_id="s1")
    tenancy.id_handle_revoke(app=app, handle_id=revoked.handle.public_id)
    records = run(
        "refused",
        servers,
        market,
        revokedHandle=revoked.secret,
        artisanToken=sign(app, "a1"),
        liveHandleId=customer.handle_id,
        appKey=f"AppKey {app.public_id}:{app.secret_1}",
    )
    refused = step(records, "refused")
    assert refused["results"]["missing"] == {"code": 401, "message": "User Id is required"}
    for name in ("unknown", "revoked", "bad-token"):
        assert refused["results"][name] == {"code": 401, "message": "Invalid User Id"}
    assert refused["readmeBoot"]["online"]["data"] == {"users": [{"userId": customer.handle}]}
    assert refused["updatedBoot"]["online"]["data"] == {"users": [{"userId": "a1"}]}  # a token: its app id
    live = step(records, "revoked-live")
    assert live["status"] == 200
    # REST refuses the revoked handle too.
    query = {"roomToken": "tok", "namespace": "customer", "userId": customer.handle}
    assert history(servers[0], query)[0] == 401


def test_a_room_with_an_expresschat_client_of_the_same_app(servers, market):
    app, customer, artisan, _stranger = market
    records = run("expresschat", servers, market, artisanToken=sign(app, "a1"))
    seen = step(records, "expresschat")
    request = seen["request"]
    assert request["State"] == "pending" and request["Requester"]["Id"] == customer.user.public_id
    assert seen["accept"]["ok"] is True and seen["accept"]["data"]["MessageCount"] == 1
    assert room_doc(seen["accepted"])["customerID"] == customer.handle
    assert seen["sent"]["ok"] is True
    assert (seen["fromEc"]["message"], seen["fromEc"]["senderId"]) == ("hello from ExpressChat", "a1")
    assert seen["toEc"]["Content"] == "hello from the app" and seen["toEc"]["ChatId"] == request["ChatId"]


ODD = [None, 5, 10**30, 1.5, True, [], {}, [1, "x"], {"a": 1}, "", "\x00", "\ud800", "x" * 20_000]


async def test_malformed_payloads_are_dropped_silently_and_the_connection_stays(servers, market):
    """A sweep over every event: odd payloads (not objects), and each field a handler reads set
    to odd values (wrong types, empty, NUL, a lone surrogate, 20 kB). Nothing answers but
    `joined` (join-room / accept-room answer every attempt) and the messages the customer may
    really send; no type outside text/image/vdo/audio is stored; no traceback in the server's
    log; the same connection then still works."""
    import asyncio
    from urllib.parse import urlencode

    import websockets

    from gateway.protocols.roomtoken import handlers
    from tests.gateway.payload_fields import payload_fields

    _app, customer, _artisan, _stranger = market
    server, nsp = servers[0], "/customer"
    url = (
        server.url.replace("http", "ws")
        + "/socket.io/?"
        + urlencode({"EIO": "3", "transport": "websocket", "userId": customer.handle})
    )
    fields = payload_fields(handlers)
    assert set(fields) == set(handlers.HANDLERS)
    bases = {
        "join-room": {"customerID": customer.handle, "vendorID": "a1", "roomToken": "fz-new", "roomID": "r"},
        "message": {"roomToken": "fz", "message": "ok", "type": "text"},
        # typing and leave-room on the real room would do something: their fields stay odd.
        "typing": {"roomToken": 0},
        "leave-room": {"roomToken": 0},
        "heartbeat": {},
    }
    bases["accept-room"] = bases["join-room"]
    server._log_file.flush()
    start = server.log.stat().st_size
    frames: list[tuple[str, object]] = []

    async def until(ws, name, match=lambda payload: True):
        while True:
            frame = await asyncio.wait_for(ws.recv(), 10)
            if frame.startswith(f"42{nsp},"):
                event, *args = json.loads(frame[len(f"42{nsp},") :])
                frames.append((event, args[0] if args else None))
                if event == name and match(frames[-1][1]):
                    return frames[-1][1]

    def emit(event, payload):
        return f"42{nsp}," + json.dumps([event, payload])

    async with websockets.connect(url, max_size=None) as ws:
        assert (await ws.recv()).startswith("0{")
        await ws.send(f"40{nsp},")
        await until(ws, "private", lambda p: p["event"] == "list-online-user")
        await ws.send(emit("join-room", {"customerID": customer.handle, "vendorID": "a1", "roomToken": "fz"}))
        assert (await until(ws, "joined"))["success"] is True
        frames.clear()
        sent = 0
        for event in sorted(handlers.HANDLERS):
            base = bases[event]
            variants = ["x", 5, [base], True]
            for field in sorted(
                fields[event] & {"roomToken", "customerID", "vendorID", "roomID", "message", "type"}
            ):
                variants += [{**base, field: odd} for odd in ODD]
            for payload in variants:
                if event == "message" and isinstance(payload, dict) and payload.get("message") == "ok":
                    payload = {**payload, "message": f"odd-{sent}"}  # only odd types and tokens here
                await ws.send(emit(event, payload))
                sent += 1
        # The sweep's sends then real ones: a type outside the enum is dropped, media types kept.
        await ws.send(emit("message", {"roomToken": "fz", "message": "exe", "type": "exe"}))
        await ws.send(emit("message", {"roomToken": "fz", "message": "https://v/1.mp4", "type": "vdo"}))
        await ws.send(emit("message", {"roomToken": "fz", "message": "plain"}))
        await until(ws, "message", lambda p: p["message"] == "plain")
        await ws.send(
            emit("join-room", {"customerID": customer.handle, "vendorID": "a1", "roomToken": "fz-2"})
        )
        assert (
            await until(ws, "joined", lambda p: p.get("data", {}).get("room", {}).get("roomToken") == "fz-2")
        )["success"]
        await asyncio.sleep(0.5)
        while True:
            try:
                frame = await asyncio.wait_for(ws.recv(), 0.2)
            except TimeoutError:
                break
            if frame.startswith(f"42{nsp},"):
                event, *args = json.loads(frame[len(f"42{nsp},") :])
                frames.append((event, args[0] if args else None))
    assert sent > 100
    names = {name for name, _payload in frames}
    assert names <= {"joined", "message"}, names  # no leave-room ack, no typing, no error event
    messages = [p for name, p in frames if name == "message"]
    assert {p["message_type"] for p in messages} <= {"text", "image", "vdo", "audio"}
    assert "exe" not in {p["message"] for p in messages}
    typed = {(p["message"], p["message_type"]) for p in messages}
    assert {("https://v/1.mp4", "vdo"), ("plain", "text")} <= typed  # no type: text (the default)
    # What was stored is what was echoed; none of the odd types or tokens was.
    stored = [p["message"] for p in messages]
    type_variants = [v for v in stored if isinstance(v, str) and v.startswith("odd-")]
    status, body = history(server, {"roomToken": "fz", "namespace": "customer", "userId": customer.handle})
    assert status == 200 and [m["message"] for m in body["data"]] == stored
    assert all(m["message_type"] in ("text", "image", "vdo", "audio") for m in body["data"])
    assert len(type_variants) == 0, type_variants
    server._log_file.flush()
    with open(server.log, "rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", "replace")
    assert "Traceback" not in text and "handler failed" not in text
