"""A CZ Messenger client and an ExpressChat client of the same two first-party users share one
conversation live: messages, typing and read state, both ways (CZ Messenger mounted for the
first-party realm, so its token is the product's access token), and a block set over CZ
Messenger REST stops the ExpressChat client's sends too."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, _start_servers, require_redis

from .conftest import NODE, ROOT, node_required

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(__file__).resolve().parent / "js" / "cz_and_expresschat.mjs"
MOUNTS = [
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
    },
    {
        "protocol": "gateway.protocols.czmessenger",
        "transport": "eio3",
        "path": "/v1/conversations/sockets/",
        "namespace": "/v1/conversations/events",
        "realm": "first_party",
    },
]
ENV = {"CHAT_PROTOCOLS": json.dumps(MOUNTS)}


def _run(cz_url: str, ec_url: str, alice, bob) -> list[dict]:
    done = subprocess.run(
        [NODE, str(SCRIPT), cz_url, ec_url, alice.id, alice.access, bob.id, bob.access],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, (done.returncode, records[-8:], done.stderr[-2000:])
    return records


def _check(records: list[dict], alice, bob) -> None:
    def got(client, name):
        return [r["data"] for r in records if r.get("client") == client and r.get("event") == name]

    room = f"{alice.id}.{bob.id}"
    assert got("bob", "receive-personal-message")[0]["Content"] == "from cz"
    echo, incoming, *_later = got("alice", "new_message")
    assert (echo["from"], echo["to"], echo["content"]) == (alice.id, bob.id, "from cz")
    assert (incoming["room_id"], incoming["from"], incoming["to"]) == (room, bob.id, alice.id)
    assert incoming["content"] == "from expresschat"
    assert got("bob", "typing")[0]["UserId"] == alice.id
    assert got("alice", "typing")[0] == {"room_id": room, "from": bob.id, "to": alice.id}
    seen = got("alice", "seen_messages")[0]
    assert (seen["from"], seen["to"], seen["last_message_id"]) == (bob.id, alice.id, incoming["_id"])
    assert got("bob", "read-personal-msg-ack")[0]["Reader"] == alice.id
    # Blocked over CZ Messenger REST: the ExpressChat send is refused, then accepted again.
    step = {r["step"]: r for r in records if r.get("kind") in ("rest", "ack")}
    assert step["block"]["status"] == 200 and step["block"]["data"]["room"]["blocked_by"] == "BUYER"
    assert "This conversation is blocked." in json.dumps(step["blocked-send"]["data"]), step
    assert step["unblock"]["data"]["status"] is True
    assert "blocked" not in json.dumps(step["unblocked-send"]["data"]), step
    contents = [d["content"] for d in got("alice", "new_message")]
    assert "while blocked" not in contents and contents[-1] == "after unblock"
    assert records[-1] == {"kind": "done"}


@pytest.fixture(scope="module")
def mixed_server(django_db_setup, django_db_blocker, tmp_path_factory):
    node_required()
    servers = _start_servers(1, tmp_path_factory.mktemp("czmixed"), REDIS_URL, ENV)
    yield servers[0]
    servers[0].stop()


def test_a_cz_messenger_client_and_an_expresschat_client_share_a_conversation_live(mixed_server, alice, bob):
    _check(_run(mixed_server.url, mixed_server.url, alice, bob), alice, bob)


@pytest.fixture(scope="module")
def mixed_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    require_redis()
    node_required()
    servers = _start_servers(2, tmp_path_factory.mktemp("czmixedpair"), REDIS_URL, ENV)
    yield servers
    for server in servers:
        server.stop()


def test_the_two_protocols_share_a_conversation_across_two_processes(mixed_pair, alice, bob):
    one, two = mixed_pair
    _check(_run(one.url, two.url, alice, bob), alice, bob)
