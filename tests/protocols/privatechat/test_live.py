"""Seed 001's app against live servers, with npm socket.io-client 4.0.0 (the app's lockfile
version, installed as the alias socket.io-client-v400) and fetch:
js/privatechat_app.mjs drives the app's REST calls and events exactly as its Redux actions and
screens do and prints what it saw; the assertions are here, with the database's side of it."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from accounts import app_logins, tenancy
from accounts.models import Friendship, IdHandle, User
from messaging.models import Conversation, Membership, Message
from tests.conftest import NODE, ROOT, require_node_package

from .conftest import APP_ID, EXPRESSCHAT_HOST, HOST

SCRIPT = Path(__file__).resolve().parent / "js" / "privatechat_app.mjs"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _node_client():
    require_node_package("socket.io-client-v400", "4.0.0")


@dataclass
class Run:
    records: list[dict[str, Any]]
    tag: str

    def events(self, client: str, event: str) -> list[Any]:
        return [
            r["data"]
            for r in self.records
            if r["kind"] == "event" and r["client"] == client and r["event"] == event
        ]

    def names(self, client: str) -> list[str]:
        return [r["event"] for r in self.records if r["kind"] == "event" and r["client"] == client]

    def http(self, note: str) -> dict[str, Any]:
        return next(r for r in self.records if r["kind"] == "http" and r["note"] == note)

    def note(self, note: str) -> dict[str, Any]:
        return next(r for r in self.records if r["kind"] == "note" and r["note"] == note)

    def notes(self, note: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "note" and r["note"] == note]


def run(scenario: str, *args: str, env: dict[str, str] | None = None) -> Run:
    tag = uuid.uuid4().hex[:8]
    done = subprocess.run(
        [NODE, str(SCRIPT), scenario, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "RUN_TAG": tag,
            # Another installed client (socket.io-client for 4.0.1) instead of the app's 4.0.0.
            **{k: v for k, v in os.environ.items() if k == "SOCKET_IO_CLIENT"},
            **(env or {}),
        },
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, (done.stderr[:600], records[-12:])
    assert records[-1]["kind"] == "done"
    return Run(records, tag)


def app_url(server) -> str:
    """What the app's `io(url)` and axios use: the mount's host name."""
    return f"http://{HOST}:{server.port}"


def test_flow_two_users_two_devices(server, app):
    result = run("flow", app_url(server))
    tag = result.tag
    alice = User.objects.get(app=app, external_id=f"alice_{tag}")
    bob = User.objects.get(app=app, external_id=f"bob_{tag}")

    # GET / on the mount's host: the original's greeting (elsewhere the web client).
    assert result.http("welcome")["body"] == {"text": "welcome to real time chat service!!"}
    with urllib.request.urlopen(f"http://localhost:{server.port}/", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/html")

    # REST: 201 sign-up (no password echoed), taken name refused, 401 with the original body.
    signup = result.http(f"signup alice_{tag}")
    assert signup["status"] == 201 and "password" not in signup["body"]
    assert signup["body"]["username"] == f"alice_{tag}" and signup["body"]["friends"] == []
    assert result.http("signup taken")["status"] == 409
    assert result.http("signin wrong") == {**result.http("signin wrong"), "status": 401}
    assert result.http("signin wrong")["body"] == {"code": 401, "message": "Wrong username/password"}
    assert alice.check_password(f"pw-alice_{tag}-long enough") and not alice.password.startswith("pw-")

    # Sign-in: `_id` is a handle (not the public id), live and stored hashed only.
    signin = result.http(f"signin alice_{tag}")["body"]
    handle = signin["_id"]
    assert handle != alice.public_id and len(handle) >= 27
    assert IdHandle.objects.filter(user=alice, revoked_at__isnull=True).count() == 2
    assert not IdHandle.objects.filter(handle_hash=handle).exists()
    assert set(signin) == {
        "_id",
        "username",
        "backgroundColor",
        "friends",
        "activeChats",
        "createdAt",
        "updatedAt",
    }
    assert result.http("profile a1")["status"] == 200 and result.http("profile a1")["body"]["_id"] == handle
    # Someone else's public id reveals nothing.
    assert result.http("profile by public id")["status"] == 404
    assert result.http("profile by public id")["body"] == {"message": "user not found"}

    # Polling upgraded to websocket.
    assert result.note("transport")["transport"] == "websocket"

    # Search: public ids only, never a handle; a friend is no longer listed.
    before = result.http("search before")["body"]
    assert [r["_id"] for r in before if r["username"] == f"alice_{tag}"] == [alice.public_id]
    assert set(before[0]) == {"_id", "username", "backgroundColor"}
    assert [r for r in result.http("search after")["body"] if r["username"] == f"alice_{tag}"] == []

    # add friend twice: one friendship, one `add friend` per device.
    assert Friendship.objects.filter(user=bob, friend=alice).count() == 1
    assert Friendship.objects.filter(user=alice, friend=bob).count() == 1
    for device in ("b1", "b2"):
        assert [f["_id"] for f in result.events(device, "add friend")] == [alice.public_id]
    for device in ("a1", "a2"):
        assert [f["_id"] for f in result.events(device, "add friend")] == [bob.public_id]

    # init chat: a direct conversation, the room's placeholder lastMessage (never null).
    ids = result.note("ids")
    room = Conversation.objects.get(public_id=ids["room"])
    assert room.kind == Conversation.Kind.DIRECT
    init = result.events("a1", "init chat")[0]
    assert init["isNewActive"] is True and init["friendId"] == bob.public_id
    assert init["room"]["lastMessage"] == {"createdAt": init["room"]["createdAt"]}
    assert [p["_id"] for p in init["room"]["participants"]] == [alice.public_id, bob.public_id]
    assert result.events("a1", "fetch messages")[0] == []
    assert result.events("a1", "get online info")[0] == {"isOnline": True, "recipientId": bob.public_id}

    # Typing: the bare boolean, to bob's devices only.
    assert result.events("b1", "notify typing")[:2] == [True, False]
    assert result.events("a2", "notify typing") == []

    # send message: every device of both, with the populated sender and the update-form room.
    sent = result.events("b2", "send message")[0]
    assert sent["message"]["sender"]["_id"] == alice.public_id
    assert sent["message"]["recipient"] == bob.public_id and sent["message"]["room"] == room.public_id
    assert sent["updatedRoom"]["unreadMessages"] == [
        {"_id": sent["message"]["_id"], "recipient": {"_id": bob.public_id, "username": f"bob_{tag}"}}
    ]
    assert sent["updatedRoom"]["lastMessage"]["message"] == "hello bob"
    message = Message.objects.get(conversation=room)
    assert message.content == "hello bob" and message.sender == alice

    # Read receipts move bob's read pointer; the broadcast carries the committed state.
    assert Membership.objects.get(conversation=room, user=bob).last_read_seq == message.seq
    read = result.note("read")["data"]
    assert read["updatedMessages"][0]["read"] is True and read["updatedRoom"]["unreadMessages"] == []

    # Presence: offline only once both of bob's devices are in the background.
    online = [v["isOnline"] for v in result.events("a1", "get online info")[1:]]
    assert online[-2:] == [False, True]

    # The app's list after a restart: the room with its last message.
    (listed,) = result.note("active chats")["data"]
    assert listed["_id"] == room.public_id and listed["lastMessage"]["message"] == "hello bob"
    assert "createdAt" not in listed
    profile = result.http("profile a1 after")["body"]
    assert [f["_id"] for f in profile["friends"]] == [bob.public_id]
    assert [r["_id"] for r in profile["activeChats"]] == [room.public_id]

    # No handle is ever in an event payload.
    signins = [r for r in result.records if r["kind"] == "http" and r["note"].startswith("signin ")]
    handles = {r["body"]["_id"] for r in signins if r["status"] == 200}
    assert len(handles) == 4
    events = json.dumps([r for r in result.records if r["kind"] == "event"])
    assert not any(h in events for h in handles)
    log = server.log.read_text()
    assert not any(h in log for h in handles)


def test_holes_closed_and_process_up(server, app):
    result = run("holes", app_url(server))
    ids = result.note("ids")
    alice = User.objects.get(public_id=ids["alice"])
    mallory = User.objects.get(public_id=ids["mallory"])
    ab_room = Conversation.objects.get(public_id=ids["abRoom"])

    # Nothing anyone sent with alice's public id, or into a room not theirs, was stored.
    contents = set(Message.objects.values_list("content", flat=True))
    assert not {"spoof 1", "spoof 2", "spoof 3", "spoof 4"} & contents
    assert {"private", "to mallory", "still up"} <= contents
    # init chat / add friend for others made nothing; no self chat.
    assert set(Friendship.objects.filter(user=alice).values_list("friend__public_id", flat=True)) == {
        ids["bob"],
        ids["mallory"],
    }
    assert not Friendship.objects.filter(user__public_id=ids["bob"], friend=mallory).exists()
    assert Conversation.objects.filter(kind=Conversation.Kind.DIRECT).count() == 2
    # Mallory read nothing of alice's room: her read pointer is not there, nor was she added.
    assert not Membership.objects.filter(conversation=ab_room, user=mallory).exists()

    # The unbound socket bound to mallory's handle, not to alice's public id: mallory's list
    # (alice's room with her has no message yet, so it is not in it), not alice's two rooms.
    assert result.note("spy list")["data"] == []
    # Nothing answered its events with alice's id: before its probe's answer it got nothing.
    spy = result.names("spy")
    assert spy[: spy.index("get active chats")] == ["connect"]
    # Bound now to mallory, it gets mallory's messages only (alice's to bob never).
    assert [m["message"]["message"] for m in result.events("spy", "send message")] == [
        "to mallory",
        "still up",
    ]
    # Mallory's socket got only its probe's answer, and typing to bob never reached her.
    assert result.note("mallory after holes")["events"] == ["get active chats"]
    assert "notify typing" not in result.note("mallory after typing")["events"]
    assert result.events("bob", "notify typing") == [True]
    assert result.events("mallory", "send message")[-1]["message"]["message"] == "still up"

    # Malformed events: answered by nothing, the socket kept, the process up.
    assert result.note("after junk")["events"] == ["get active chats"]
    assert set(result.note("loose events")["events"]) <= {"connect"}
    assert server.proc.poll() is None
    assert "Traceback" not in server.log.read_text()


def test_revoked_handle_is_refused(server, app):
    """A handle an admin revoked serves nothing any more: the app must sign in again."""
    user = app_logins.app_user_register(app=app, username="revokee", password="a long password 1")
    issued = tenancy.id_handle_issue(app=app, external_id=user.external_id)
    url = f"{app_url(server)}/user/{issued.secret}"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert json.loads(response.read())["_id"] == issued.secret
    tenancy.id_handle_revoke(app=app, handle_id=issued.handle.public_id)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 404


def test_a_reconnected_socket_binds_again_and_a_killed_app_goes_offline(server, app):
    result = run("reconnect", app_url(server))
    # Only the fetch after `read messages` was answered: the new socket was unbound until then.
    assert result.note("after reconnect")["events"] == 1
    assert [m["message"]["message"] for m in result.events("b", "send message")] == ["after the drop"]
    assert result.events("a", "get online info")[-1] == {
        "isOnline": False,
        "recipientId": result.note("ids")["bob"],
    }


def test_two_processes_on_redis(server_pair, app):
    one, two = server_pair
    result = run("pair", app_url(one), app_url(two))
    ids = result.note("ids")
    assert [m["message"]["message"] for m in result.events("b", "send message")] == ["across"]
    assert result.events("b", "notify typing")[0] is True
    assert result.events("b", "get online info")[-1] == {"isOnline": False, "recipientId": ids["alice"]}
    bob = User.objects.get(public_id=ids["bob"])
    room = Conversation.objects.get(public_id=ids["room"])
    assert Membership.objects.get(conversation=room, user=bob).last_read_seq == room.last_seq == 1


def test_shared_with_an_expresschat_client_of_the_same_app(server, app):
    now = int(time.time())
    carol_id = f"carol_{uuid.uuid4().hex[:6]}"
    token = jwt.encode(
        {"sub": carol_id, "app": APP_ID, "exp": now + 600, "iat": now - 5, "name": carol_id},
        app.secret_1,
        algorithm="HS256",
    )
    result = run("mixed", app_url(server), app_url(server), token, env={"EXPRESSCHAT_HOST": EXPRESSCHAT_HOST})
    ids = result.note("ids")
    carol = User.objects.get(app=app, external_id=carol_id)
    assert ids["carol"] == carol.public_id
    got = result.note("carol got")["data"]
    assert (got["ChatId"], got["Content"]) == (ids["room"], "from the app")
    from_carol = [
        m for m in result.events("alice", "send message") if m["message"]["message"] == "from expresschat"
    ]
    assert from_carol[0]["message"]["sender"]["_id"] == carol.public_id
    assert ids["ack"]["ChatId"] == ids["room"]
    assert Message.objects.filter(conversation__public_id=ids["room"]).count() == 2
