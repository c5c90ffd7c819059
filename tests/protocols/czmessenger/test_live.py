"""CZ Messenger against a live server with the real npm socket.io-client 2.3.1: a buyer and a
seller (two tabs) exchange messages, typing and seen receipts; refused handshakes; reconnect and
`verify_user`; the older /socket.io + /messenger mount."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, _start_servers, require_redis
from tests.tenants.helpers import sign

from .conftest import MOUNTS, NODE, ROOT, node_required

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(__file__).resolve().parent / "js" / "cz_clients.mjs"
ENV = {"CHAT_PROTOCOLS": json.dumps(MOUNTS), "CHAT_PRESENCE_DEBOUNCE_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def cz_server(django_db_setup, django_db_blocker, tmp_path_factory):
    node_required()
    servers = _start_servers(1, tmp_path_factory.mktemp("cz"), REDIS_URL, ENV)
    yield servers[0]
    servers[0].stop()


def run(scenario: str, buyer_url: str, seller_url: str, app, buyer="b9", seller="u1") -> list[dict]:
    config = {
        "scenario": scenario,
        "buyerUrl": buyer_url,
        "sellerUrl": seller_url,
        "buyer": {"id": buyer, "token": sign(app, buyer)},
        "seller": {"id": seller, "token": sign(app, seller)},
        "path": "/v1/conversations/sockets",
        "nsp": "/v1/conversations/events",
        "legacy": {"path": "/socket.io", "nsp": "/messenger"},
    }
    done = subprocess.run(
        [NODE, str(SCRIPT), json.dumps(config)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, (done.returncode, records[-8:], done.stderr[-2000:])
    assert records[-1] == {"kind": "done"}
    return records


def events(records, client, name):
    return [r["data"] for r in records if r.get("client") == client and r.get("event") == name]


def step(records, name):
    return next(r for r in records if r.get("step") == name)


def check_chat(records):
    assert events(records, "buyer", "active_user_list")[0] == {
        "user_id": "b9",
        "user_role": "BUYER",
        "rooms": [],
    }
    listed = events(records, "seller", "active_user_list")[0]
    assert listed == {"user_id": "u1", "user_role": "SELLER", "rooms": [{"room_id": "b9.u1", "status": True}]}
    echo = events(records, "buyer", "create_room")[0]
    assert echo["_id"] == echo["room_id"] == "b9.u1"
    assert echo["buyer_info"] == {"name": "Le Vuong"}  # unknown keys are not echoed
    online = events(records, "buyer", "user_status_change")[0]
    assert online == {"user_id": "u1", "user_role": "SELLER", "room_id": "b9.u1", "status": True}

    first, retry = events(records, "buyer", "new_message")[:2]
    assert set(first) == {
        "room_id",
        "from",
        "to",
        "type",
        "content",
        "client_message_id",
        "_id",
        "created_at",
    }
    assert (first["from"], first["to"], first["type"], first["content"]) == ("b9", "u1", "TEXT", "hello")
    assert first["created_at"].endswith("Z") and len(first["created_at"]) == 24
    assert retry == first  # client_message_id is idempotent: the original message again
    got = events(records, "seller", "new_message")
    assert got[0] == first and events(records, "seller2", "new_message")[0] == first
    assert step(records, "extra-seller-messages")["count"] == 0  # spoof, foreign room: dropped
    assert all(
        m["content"] != "spoof" for r in ("seller", "seller2") for m in events(records, r, "new_message")
    )

    assert events(records, "seller", "typing")[0] == {"room_id": "b9.u1", "from": "b9", "to": "u1"}
    assert events(records, "seller", "stop_typing")[0] == {"room_id": "b9.u1", "from": "b9", "to": "u1"}
    assert step(records, "buyer-own-typing")["count"] == 0  # not to the emitting socket

    seller_message = step(records, "seen")["sellerMessage"]
    seen = events(records, "seller", "seen_messages")[0]
    assert (seen["room_id"], seen["from"], seen["to"]) == ("b9.u1", "b9", "u1")
    assert seen["last_message_id"] == seller_message and seen["message_ids"] == [seller_message]
    image = step(records, "image")
    assert image["echo"]["type"] == "IMAGE" and image["echo"]["content"] == "https://cdn.example/a.jpg"
    assert [c["type"] for c in image["copies"]] == ["IMAGE", "IMAGE"]
    assert image["copies"][0]["_id"] == image["echo"]["_id"]
    deleted = step(records, "deleted")
    assert deleted["status"] == 200 and deleted["body"]["role"] == "SELLER"
    deletion = {"room_id": "b9.u1", "seller": "u1", "buyer": "b9", "deletion_role": "SELLER"}
    assert events(records, "buyer", "room_deletion") == [deletion]
    offline = [d for d in events(records, "buyer", "user_status_change") if d["status"] is False]
    assert offline == [{"user_id": "u1", "user_role": "SELLER", "room_id": "b9.u1", "status": False}]


def test_buyer_and_seller_chat_type_and_see_over_socketio_2(cz_server, market):
    app, _buyer, _seller = market
    check_chat(run("chat", cz_server.url, cz_server.url, app))


def test_bad_token_or_foreign_user_id_is_refused_with_authentication_error(cz_server, market):
    app, _buyer, _seller = market
    records = run("refused", cz_server.url, cz_server.url, app)
    for client in ("bad", "other", "none"):
        assert events(records, client, "error") == ["Authentication Error"]


def test_a_reconnected_client_verifies_its_user(cz_server, market):
    app, _buyer, _seller = market
    records = run("reconnect", cz_server.url, cz_server.url, app)
    assert step(records, "verified")["status"] is True
    assert step(records, "verified")["afterFalse"] == "io server disconnect"  # no reconnect
    assert len(events(records, "buyer", "active_user_list")) == 2  # once per connection


def test_the_older_socketio_path_and_messenger_namespace_are_served(cz_server, market):
    app, _buyer, _seller = market
    records = run("legacy", cz_server.url, cz_server.url, app)
    assert events(records, "buyer", "active_user_list")[0]["user_id"] == "b9"


@pytest.fixture(scope="module")
def cz_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    require_redis()
    node_required()
    servers = _start_servers(2, tmp_path_factory.mktemp("czpair"), REDIS_URL, ENV)
    yield servers
    for server in servers:
        server.stop()


def test_buyer_and_seller_on_two_processes_sharing_redis(cz_pair, market):
    app, _buyer, _seller = market
    one, two = cz_pair
    check_chat(run("chat", one.url, two.url, app))


async def test_bytes_in_any_field_of_any_event_are_dropped_silently_and_the_connection_stays(
    cz_server, market
):
    """Socket.IO 2 clients may send binary arguments (BINARY_EVENT); no CZ Messenger event takes
    bytes. A sweep: every event, with the whole payload or each field its handler reads replaced
    by bytes, is dropped without an answer (the original's clients expect none) and without a
    traceback, and the same connection then opens a room."""
    import asyncio
    from urllib.parse import urlencode

    import websockets

    from gateway.protocols.czmessenger import handlers
    from tests.gateway.payload_fields import payload_fields

    app = market[0]
    query = urlencode({"token": sign(app, "b9"), "user_id": "b9", "user_role": "BUYER"})
    url = (
        cz_server.url.replace("http", "ws") + f"/v1/conversations/sockets/?EIO=3&transport=websocket&{query}"
    )
    nsp = "/v1/conversations/events"
    base = {
        "type": "BS",
        "buyer": "b9",
        "seller": "u1",
        "creator": "b9",
        "shop_id": "123",
        "buyer_info": {"name": "Le Vuong"},
        "room_id": "b9.u1",
        "to": "u1",
        "from": "b9",
        "content": "hello",
        "client_message_id": "c-1",
        "message_ids": ["x"],
        "last_message_id": "x",
        "token": sign(app, "b9"),
        "user_id": "b9",
    }
    fields = payload_fields(handlers)
    assert set(fields) == set(handlers.HANDLERS)
    cz_server._log_file.flush()
    start = cz_server.log.stat().st_size
    async with websockets.connect(url) as ws:
        assert (await ws.recv()).startswith("0{")
        await ws.send(f"40{nsp},")
        assert await ws.recv() == f"40{nsp},"
        sent = 0
        for event in sorted(handlers.HANDLERS):
            variants = [b"\x00"] + [{**base, field: b"\xff"} for field in sorted(fields[event] & set(base))]
            for payload in variants:
                # BINARY_EVENT with one attachment: the payload (or the field) as a placeholder.
                if isinstance(payload, bytes):
                    header, attachment = [event, {"_placeholder": True, "num": 0}], payload
                else:
                    field = next(k for k, v in payload.items() if isinstance(v, bytes))
                    header = [event, {**payload, field: {"_placeholder": True, "num": 0}}]
                    attachment = payload[field]
                await ws.send(f"451-{nsp}," + json.dumps(header))
                await ws.send(b"\x04" + attachment)
                sent += 1
        await ws.send(
            f"42{nsp},"
            + json.dumps(
                ["create_room", {k: base[k] for k in ("type", "buyer", "seller", "creator", "shop_id")}]
            )
        )
        frames = []
        while not (frame := await asyncio.wait_for(ws.recv(), 5)).startswith(f'42{nsp},["create_room"'):
            frames.append(frame)
    assert sent > 15
    # Nothing answered the binary events; only the protocol's own pushes may have come meanwhile.
    assert all(f.startswith(f'42{nsp},["active_user_list"') for f in frames), frames
    cz_server._log_file.flush()
    with open(cz_server.log, "rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", "replace")
    assert "Traceback" not in text and "handler failed" not in text
