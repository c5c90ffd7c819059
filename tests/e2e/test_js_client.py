"""The original ExpressChat browser client, in Node with socket.io-client 4.0.1, against a live
server: sign-up with the mailed code, login cookies, a socket over polling then websocket, a
personal chat both ways, the refusal sequence the page depends on, and the access-token push.

tests/e2e/js/expresschat_flow.mjs drives the client and prints what it saw as JSON lines; the
assertions are here.
"""

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import LoginSession, User
from accounts.tokens import access_decode
from messaging.models import Conversation, Message
from tests.conftest import require_node_package

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "expresschat_flow.mjs"
NODE = shutil.which("node")
SCRIPT_LIMIT = 30  # seconds; the script stops itself after 20

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _node_client():
    require_node_package("socket.io-client", "4.0.1")


@dataclass
class Run:
    records: list[dict[str, Any]]

    def events(self, client: str) -> list[tuple[str, Any]]:
        return [
            (r["event"], r["data"]) for r in self.records if r["kind"] == "event" and r["client"] == client
        ]

    def names(self, client: str) -> list[str]:
        return [name for name, _ in self.events(client)]

    def first(self, client: str, event: str) -> Any:
        return next(data for name, data in self.events(client) if name == event)

    def all(self, client: str, event: str) -> list[Any]:
        return [data for name, data in self.events(client) if name == event]

    def transports(self, client: str, event: str) -> list[str]:
        return [
            r["transport"]
            for r in self.records
            if r["kind"] == "event" and r["client"] == client and r["event"] == event
        ]

    def engine(self, client: str) -> list[tuple[str, str]]:
        return [
            (r["event"], r["transport"])
            for r in self.records
            if r["kind"] == "engine" and r["client"] == client
        ]

    def http(self, client: str, path: str) -> dict[str, Any]:
        return next(
            r for r in self.records if r["kind"] == "http" and r["client"] == client and r["path"] == path
        )

    def note(self, client: str | None = None) -> dict[str, Any]:
        """What the script derived along the way (ids, the mailed code), for one client or
        (None) for the whole flow."""
        merged: dict[str, Any] = {}
        for record in self.records:
            if record["kind"] == "note" and record.get("client") == client:
                merged.update(record)
        return merged


def run_script(scenario: str, server, **env: str) -> Run:
    """Run one scenario to its end; a failing script fails the test with what it printed."""
    completed = subprocess.run(
        [NODE, str(SCRIPT), scenario, server.url],
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
            f"stderr:\n{completed.stderr[-4000:]}\nstdout (last lines):\n{completed.stdout[-4000:]}"
        )
    records = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    assert records[-1]["kind"] == "done"
    return Run(records)


def mail_dir(server) -> Path:
    # conftest's _start_servers sets EMAIL_FILE_PATH to <the server's tmp dir>/mail.
    return server.log.parent / "mail"


def auth_cookies_ok(set_cookies: list[dict[str, Any]]) -> None:
    """Both tokens, refresh first, as httpOnly lax session cookies on /."""
    assert [c["name"] for c in set_cookies] == ["refresh_token", "access_token"]
    for cookie in set_cookies:
        assert not cookie["empty"]
        assert cookie["attrs"].get("httponly") is True and cookie["attrs"].get("samesite") == "Lax"
        assert cookie["attrs"].get("path") == "/"
        assert "max-age" not in cookie["attrs"] and "expires" not in cookie["attrs"]


def test_signup_verify_login_then_chat_over_socketio(live_server_proc):
    tag = uuid.uuid4().hex[:10]
    run = run_script("flow", live_server_proc, MAIL_DIR=str(mail_dir(live_server_proc)), RUN_TAG=tag)
    notes = run.note()

    for name in ("Alice", "Bob"):
        email = f"{name.lower()}.{tag}@example.com"
        signup = run.http(name, "/signup")
        assert (signup["status"], signup["body"]) == (
            200,
            {"success": 1, "message": "Authentication mail sent successfully"},
        )
        assert signup["contentType"] == "application/json; charset=utf-8"
        mailed = run.note(name)
        assert (mailed["linkEmail"], mailed["linkToken"]) == (email, mailed["code"])
        verify = run.http(name, "/verify")
        assert verify["body"] == {
            "success": 1,
            "message": "User Verified and Cookies are returned in response",
        }
        auth_cookies_ok(verify["setCookies"])
        login = run.http(name, "/login")
        assert login["body"] == {"success": 1, "message": "User Logged in succcessfully"}
        auth_cookies_ok(login["setCookies"])
        user = User.objects.get(email=email)
        assert user.email_verified and user.display_name == name
        assert LoginSession.objects.filter(user=user, revoked_at__isnull=True).count() == 2  # verify, login

    alice_id, bob_id, chat_id = notes["aliceId"], notes["bobId"], notes["chatId"]
    for name, user_id in (("Alice", alice_id), ("Bob", bob_id)):
        assert run.names(name)[:4] == ["connect", "user-id", "personal-chat-list", "group-chat-list"]
        assert run.first(name, "user-id") == {"userId": user_id, "userName": name}
        assert run.first(name, "personal-chat-list") == {"PersonalChatList": []}
        assert run.first(name, "group-chat-list") == {"GroupChatList": []}
        # Default transports: the engine opens over polling, then upgrades to websocket (the
        # namespace "connect" may come on either side of the upgrade).
        assert run.engine(name) == [("open", "polling"), ("upgrade", "websocket")]
        assert run.transports(name, "receive-personal-message") == ["websocket"]
        assert "connect_error" not in run.names(name) and "auth-failure" not in run.names(name)
        assert run.names(name).count("connect") == 1
        assert run.names(name)[-1] == "disconnect" and run.first(name, "disconnect") == "io client disconnect"

    assert [u["_id"] for u in run.first("Alice", "searched-user")["Users"]] == [bob_id]
    assert run.first("Alice", "create-personal-chat-creator") == {"ChatId": chat_id, "Partner": "Bob"}
    assert run.first("Bob", "create-personal-chat-partner") == {"ChatId": chat_id, "Partner": "Alice"}

    (to_bob,) = run.all("Bob", "receive-personal-message")
    (to_alice,) = run.all("Alice", "receive-personal-message")
    assert {k: to_bob[k] for k in ("ChatId", "Content", "Sender")} == {
        "ChatId": chat_id,
        "Content": "hi Bob",
        "Sender": "Alice",
    }
    assert {k: to_alice[k] for k in ("ChatId", "Content", "Sender")} == {
        "ChatId": chat_id,
        "Content": "hi Alice",
        "Sender": "Bob",
    }
    # Extra keys are compatible extensions (the original client reads ChatId only).
    assert [ack["ChatId"] for ack in run.all("Alice", "read-personal-msg-ack")] == [chat_id]
    assert [ack["ChatId"] for ack in run.all("Bob", "read-personal-msg-ack")] == [chat_id]

    page = run.first("Alice", "personal-chat")
    assert [(m["Content"], m["Sender"]) for m in page["Messages"]] == [
        ("hi Alice", bob_id),
        ("hi Bob", alice_id),
    ]
    assert (page["UserId"], page["User"], page["Partner"]) == (alice_id, "Alice", "Bob")
    # Both read everything before the fetch.
    assert all(m["ReadStatus"] == {alice_id: "Read", bob_id: "Read"} for m in page["Messages"])

    conversation = Conversation.objects.get(public_id=chat_id)
    assert conversation.kind == Conversation.Kind.DIRECT
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.parametrize("transports", ["", "websocket"], ids=["default", "websocket"])
def test_bad_cookie_sees_connect_then_auth_failure_then_server_disconnect(live_server_proc, transports):
    run = run_script("bad-cookie", live_server_proc, TRANSPORTS=transports)
    assert run.names("Mallory") == ["connect", "auth-failure", "disconnect"]
    assert run.first("Mallory", "auth-failure")["reason"] == "Authentication failed"
    assert run.first("Mallory", "disconnect") == "io server disconnect"  # no auto-reconnect after it


def test_expired_access_cookie_with_refresh_cookie_gets_access_token_then_stores_it(
    live_server_proc, make_user
):
    alice = make_user("Alice")
    expired = AccessToken.for_user(alice.user)
    expired["sid"] = alice.sid
    expired.set_exp(lifetime=timedelta(seconds=-5))
    run = run_script(
        "expired-access", live_server_proc, ACCESS_TOKEN=str(expired), REFRESH_TOKEN=alice.refresh
    )

    assert run.names("first")[:5] == [
        "connect",
        "access-token",
        "user-id",
        "personal-chat-list",
        "group-chat-list",
    ]
    fresh = run.first("first", "access-token")["accessToken"]
    claims = access_decode(fresh)  # valid now, same user, same login session
    assert (claims.user_id, claims.sid) == (alice.id, alice.sid)
    assert run.first("first", "user-id") == {"userId": alice.id, "userName": "Alice"}

    update = run.http("Alice", "/update-access-token")
    assert (update["status"], update["body"]) == (200, {"message": "Cookie updated successfully"})
    assert [c["name"] for c in update["setCookies"]] == ["access_token"]
    assert run.names("second")[:4] == ["connect", "user-id", "personal-chat-list", "group-chat-list"]
    assert "access-token" not in run.names("second")
