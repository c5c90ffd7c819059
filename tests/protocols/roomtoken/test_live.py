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

from tests.conftest import REDIS_URL, REQUIRE_SERVICES, _start_servers
from tests.tenants.helpers import sign

from .conftest import NODE, ROOT, node_required

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(__file__).resolve().parent / "js" / "roomtoken_clients.mjs"
ENV = {"CHAT_PRESENCE_DEBOUNCE_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two server processes sharing the database and Redis (one without Redis: skipped)."""
    node_required()
    if not REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("REDIS_URL is required for multi-process tests in CI")
        pytest.skip("REDIS_URL not set: multi-process tests need Redis")
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
