"""CHAT SERVER with the original's own client library, npm socket.io-client 4.0.1, against a
live server: the README's integration order over REST and two sockets, a socket closed without
`leave`, and the refusal texts as `connect_error`.

js/chatserver_flow.mjs drives the clients and prints what it saw as JSON lines; the assertions
are here.
"""

import base64
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from accounts import tenancy
from tests.conftest import require_node_package

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).resolve().parent / "js" / "chatserver_flow.mjs"
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

    def all(self, client: str, event: str) -> list[Any]:
        return [data for name, data in self.events(client) if name == event]

    def http(self, method: str, path: str) -> list[dict[str, Any]]:
        return [
            r for r in self.records if r["kind"] == "http" and r["method"] == method and r["path"] == path
        ]

    def note(self) -> dict[str, Any]:
        return next(r for r in self.records if r["kind"] == "note")


def run_script(scenario: str, server, app) -> Run:
    """Run one scenario to its end; a failing script fails the test with what it printed."""
    completed = subprocess.run(
        [NODE, str(SCRIPT), scenario, server.url],
        cwd=ROOT,
        env={
            **os.environ,
            "APP_ID": app.public_id,
            "APP_SECRET": app.secret_1,
            "RUN_TAG": uuid.uuid4().hex[:12],
        },
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


def text(message: dict[str, Any]) -> str:
    return base64.b64decode(message["message"], validate=True).decode("utf-8")


def test_the_readme_integration_order_with_socket_io_client_4(server):
    app = tenancy.app_create(name="Readme JS")
    run = run_script("flow", server, app)
    note = run.note()
    ann, bob, room = note["ann"], note["bob"], note["room"]

    users = [r["body"] for r in run.http("POST", "/user")]
    assert [u["appUserId"] for u in users] == ["1", "2"]
    assert all("token" not in json.dumps(r["body"]) for r in run.records if r["kind"] == "http")
    assert run.http("PUT", "/room/add")[0]["body"] == {"message": "updated"}

    ann_events, bob_events = run.events("ann"), run.events("bob")
    # The joiner's own replies first, then the room's `roomData` (the original's order).
    for events in (ann_events, bob_events):
        assert [name for name, _ in events[:4]] == ["connect", "info", "room_info", "roomData"]
        assert events[1][1] == "You have joined the room"
    info = ann_events[2][1]
    assert info["room"] == "usr-1-2" and info["id"] == room
    assert {u["appUserId"] for u in info["users"]} == {"1", "2"}
    assert run.all("ann", "info")[1:] == [f"{bob} has joined!", f"{bob} has left"]
    assert run.all("bob", "info") == ["You have joined the room"]  # never told about itself
    assert {u["sender"] for u in run.all("bob", "roomData")[0]["users"]} == {ann, bob}
    assert {u["sender"] for u in run.all("ann", "roomData")[-1]["users"]} == {ann}

    # send_message: everyone in the room, the sender too, the text in standard base64
    ann_messages, bob_messages = run.all("ann", "message"), run.all("bob", "message")
    assert [text(m) for m in ann_messages] == ["héllo bob", "second", "second, edited", "after leave"]
    assert [text(m) for m in bob_messages] == [
        "héllo bob",
        "second",
        "second, edited",
    ]  # left before the last
    assert bob_messages[0]["userId"] == ann and bob_messages[0]["roomId"] == room
    assert bob_messages[2]["id"] == bob_messages[1]["id"]  # update re-sends the same message

    for client in ("ann", "bob"):
        [typing] = run.all(client, "is_typing")
        assert typing["typing"] is True and typing["data"]["id"] == bob
        assert [s["id"] for s in run.all(client, "seen_by")] == [bob]

    first_page, second_page, after_delete = run.all("bob", "load_more")
    assert [text(m) for m in first_page] == ["second"]
    assert [text(m) for m in second_page] == ["héllo bob"]
    assert [text(m) for m in after_delete] == ["héllo bob"]
    assert run.all("bob", "delete") == [{"id": bob_messages[1]["id"], "roomId": room}]
    assert run.all("bob", "err") == run.all("ann", "err") == []
    assert "token" not in json.dumps([r for r in run.records if r["kind"] == "event"])


def test_a_socket_closed_without_leave_is_announced_like_a_leave(server):
    app = tenancy.app_create(name="Goodbye JS")
    run = run_script("goodbye", server, app)
    bob = run.note()["bob"]
    assert run.all("ann", "info")[-1] == f"{bob} has left"
    assert {u["sender"] for u in run.all("ann", "roomData")[-1]["users"]} == {run.note()["ann"]}


def test_refusals_are_connect_errors_with_the_original_texts(server):
    app = tenancy.app_create(name="Refusals JS")
    run = run_script("refusals", server, app)
    assert run.events("none") == [("connect_error", "No token key found")]
    assert run.events("empty") == [("connect_error", "No token key found")]
    assert run.events("unknown") == [("connect_error", "token key mismatch")]
