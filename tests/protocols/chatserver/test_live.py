"""CHAT SERVER against a running server, with python-socketio 5 clients (Socket.IO 4, `?token=`)
and the REST API: the README's integration order end to end, two apps apart, a re-registered
token closing the old token's sockets, refusal texts, a removed member, and malformed events.

The mount is added by CHAT_PROTOCOLS on the host name 127.0.0.1, before ExpressChat's "/" on the
same path (which keeps every other host name)."""

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request

import pytest
import socketio

from accounts import tenancy
from tests.tenants.helpers import VerifyServer

pytestmark = pytest.mark.django_db(transaction=True)


def rest(server, app, method: str, path: str, body: dict | None = None, **headers) -> tuple[int, object]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            **({"Authorization": f"AppKey {app.public_id}:{app.secret_1}"} if app else {}),
            "Content-Type": "application/json",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def register(server, app, uid: int, token: str, first: str = "User") -> dict:
    status, body = rest(
        server,
        app,
        "POST",
        "/user",
        {"appId": app.public_id, "appUserId": uid, "firstName": first, "lastName": str(uid), "token": token},
    )
    assert status == 200, body
    return body


class Client:
    """An original client: socket.io-client 4 semantics, every event recorded."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.queues: dict[str, asyncio.Queue] = {}
        self.disconnected = asyncio.Event()
        self.connect_error: object = None
        self.sio.on("disconnect", self.disconnected.set)

        @self.sio.on("*")
        async def any_event(event, *args):
            self.queue(event).put_nowait(args[0] if args else None)

        @self.sio.event
        async def connect_error(data):
            self.connect_error = data

    def queue(self, name: str) -> asyncio.Queue:
        return self.queues.setdefault(name, asyncio.Queue())

    async def next(self, name: str, timeout: float = 5) -> object:
        return await asyncio.wait_for(self.queue(name).get(), timeout)

    async def nothing(self, name: str, wait: float = 0.5) -> None:
        await asyncio.sleep(wait)
        assert self.queue(name).empty(), (name, self.queue(name).get_nowait())

    async def connect(self, server, token: str | None) -> "Client":
        query = f"?token={token}" if token is not None else ""
        await self.sio.connect(server.url + query, transports=["websocket"], wait_timeout=5)
        return self

    async def emit(self, event: str, *args) -> None:
        await self.sio.emit(event, args[0] if len(args) == 1 else args if args else None)

    async def close(self) -> None:
        await self.sio.disconnect()


async def test_readme_integration_order_end_to_end(server):
    app = tenancy.app_create(name="Callsewa")
    ann, bob = register(server, app, 1, "ann-token-1", "Ann"), register(server, app, 2, "bob-token-2", "Bob")
    status, room = rest(
        server, app, "POST", "/room", {"room": "usr-1-2", "appId": app.public_id, "users": [1, 2]}
    )
    assert status == 200 and "ann-token" not in json.dumps(room)
    a, b = await Client().connect(server, "ann-token-1"), await Client().connect(server, "bob-token-2")
    try:
        await a.emit("join", "usr-1-2")
        assert await a.next("info") == "You have joined the room"
        info = await a.next("room_info")
        assert info["room"] == "usr-1-2" and {u["appUserId"] for u in info["users"]} == {"1", "2"}
        assert all("token" not in u and "app" not in u for u in info["users"])
        data = await a.next("roomData")
        assert data["room"] == "usr-1-2" and ann["id"] in {u["sender"] for u in data["users"]}
        await b.emit("join", "usr-1-2")
        assert await b.next("info") == "You have joined the room"
        await b.next("room_info")
        assert await a.next("info") == f"{bob['id']} has joined!"
        for client in (a, b):
            data = await client.next("roomData")
            assert {u["sender"] for u in data["users"]} == {ann["id"], bob["id"]}
        await b.nothing("info", 0.2)  # not told about itself
        await a.emit("send_message", "héllo bob")
        for client in (a, b):  # the sender too
            message = await client.next("message")
            assert base64.b64decode(message["message"]).decode() == "héllo bob"
            assert message["userId"] == ann["id"] and "token" not in message["user"]
        await b.emit("typing", True)
        for client in (a, b):
            typing = await client.next("is_typing")
            assert typing["typing"] is True and typing["data"]["id"] == bob["id"]
        await b.emit("seen")
        for client in (a, b):
            assert (await client.next("seen_by"))["id"] == bob["id"]
        await a.emit("send_message", "second")
        second = await b.next("message")
        await a.next("message")
        await b.emit("load_more", {"page": 1, "limit": 1})
        page = await b.next("load_more")
        assert [base64.b64decode(m["message"]).decode() for m in page] == ["second"]
        await b.emit("load_more", {"page": 2, "limit": 1})
        assert [base64.b64decode(m["message"]).decode() for m in await b.next("load_more")] == ["héllo bob"]
        await a.emit("update", {"id": second["id"], "message": "second, edited"})
        edited = await b.next("message")
        assert (
            edited["id"] == second["id"] and base64.b64decode(edited["message"]).decode() == "second, edited"
        )
        await a.next("message")
        await b.emit("update", {"id": second["id"], "message": "not mine"})
        assert isinstance(await b.next("err"), str)
        await a.emit("delete", second["id"])
        assert await b.next("delete") == {"id": second["id"], "roomId": room["id"]}
        await b.emit("load_more", {})
        assert [base64.b64decode(m["message"]).decode() for m in await b.next("load_more")] == ["héllo bob"]
        await b.emit("leave")
        assert await a.next("info") == f"{bob['id']} has left"
        assert {u["sender"] for u in (await a.next("roomData"))["users"]} == {ann["id"]}
        await a.emit("send_message", "after leave")
        await a.next("message")
        await b.nothing("message")
    finally:
        await a.close()
        await b.close()


async def test_refusals_are_connect_errors_with_the_original_texts(server):
    app = tenancy.app_create(name="Refusals")
    register(server, app, 1, "good-token-1")
    for token, text in (
        (None, "No token key found"),
        ("", "No token key found"),
        ("wrong-token", "token key mismatch"),
    ):
        client = Client()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(server, token)
        assert client.connect_error == {"message": text}


async def test_two_apps_never_meet(server):
    one, two = tenancy.app_create(name="One"), tenancy.app_create(name="Two")
    register(server, one, 1, "one-token-1")
    register(server, two, 1, "two-token-1")
    rest(server, one, "POST", "/room", {"room": "lobby", "users": [1]})
    rest(server, two, "POST", "/room", {"room": "lobby", "users": [1]})
    a, b = await Client().connect(server, "one-token-1"), await Client().connect(server, "two-token-1")
    try:
        await a.emit("join", "lobby")
        await b.emit("join", "lobby")
        info_a, info_b = await a.next("room_info"), await b.next("room_info")
        assert info_a["id"] != info_b["id"]
        await a.emit("send_message", "only for app one")
        await a.next("message")
        await b.nothing("message")
        data = await b.next("roomData")
        assert [u["roomId"] for u in data["users"]] == [info_b["id"]]
    finally:
        await a.close()
        await b.close()


async def test_reregistered_token_closes_the_old_sockets(server):
    app = tenancy.app_create(name="Rotate")
    register(server, app, 1, "old-token-111")
    client = await Client().connect(server, "old-token-111")
    try:
        register(server, app, 1, "new-token-222")
        await asyncio.wait_for(client.disconnected.wait(), 3)
        again = Client()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await again.connect(server, "old-token-111")
        assert again.connect_error == {"message": "token key mismatch"}
        fresh = await Client().connect(server, "new-token-222")
        await fresh.close()
    finally:
        await client.close()


async def test_removed_member_cannot_join_and_stops_receiving(server):
    app = tenancy.app_create(name="Removal")
    register(server, app, 1, "owner-token-1")
    register(server, app, 2, "member-token-2")
    rest(server, app, "POST", "/room", {"room": "team", "users": [1, 2]})
    owner, member = (
        await Client().connect(server, "owner-token-1"),
        await Client().connect(server, "member-token-2"),
    )
    try:
        for client in (owner, member):
            await client.emit("join", "team")
            await client.next("room_info")
        assert rest(server, app, "PUT", "/room/remove", {"room": "team", "users": [2]})[1] == {
            "message": "updated"
        }
        await asyncio.sleep(0.3)
        await owner.emit("send_message", "members only")
        await owner.next("message")
        await member.nothing("message")
        await member.emit("send_message", "still here?")
        assert isinstance(await member.next("err"), str)
        await member.emit("join", "team")
        assert await member.next("err") == "Invalid room name"
    finally:
        await owner.close()
        await member.close()


async def test_malformed_events_are_ignored_or_err_never_a_crash(server):
    app = tenancy.app_create(name="Fuzz")
    register(server, app, 1, "fuzz-token-1")
    rest(server, app, "POST", "/room", {"room": "r", "users": [1]})
    client = await Client().connect(server, "fuzz-token-1")
    try:
        await client.emit("send_message", "before join")
        assert await client.next("err") == "No message or sender"
        await client.emit("join", "")
        assert await client.next("err") == "Input room name"
        await client.emit("join", 5)
        assert await client.next("err") == "Input room name"
        await client.emit("join", "nope")
        assert await client.next("err") == "Invalid room name"
        await client.emit("join", "r")
        await client.next("room_info")
        await client.emit("seen")  # a room with no chat message yet
        await client.next("seen_by")
        await client.emit("load_more")  # no argument
        assert await client.next("load_more") == []
        for limit in (-5, 10**9, "x", None):
            await client.emit("load_more", {"page": -1, "limit": limit})
            assert await client.next("load_more") == []
        for bad in (5, None, {"a": 1}, ["x"], ""):
            await client.emit("send_message", bad)
            assert await client.next("err") == "No message or sender"
        await client.emit("update", "x")
        assert isinstance(await client.next("err"), str)
        await client.emit("update", {"id": "0" * 24, "message": "x"})
        assert isinstance(await client.next("err"), str)
        await client.emit("delete", {"id": 5})
        assert isinstance(await client.next("err"), str)
        await client.emit("delete", "does-not-exist")
        err = await client.next("err")
        assert "SELECT" not in err and "Traceback" not in err
        await client.emit("no-such-event", 1)
        await client.emit("send_message", "still alive")
        assert base64.b64decode((await client.next("message"))["message"]).decode() == "still alive"
    finally:
        await client.close()


async def refused_with(server, token: str) -> object:
    client = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server, token)
    return client.connect_error


@pytest.mark.parametrize("status", [200, 204, 401, 403, 404, 500])
async def test_the_verification_url_admits_only_2xx(server, status):
    verify = VerifyServer(status)
    try:
        app = await asyncio.to_thread(tenancy.app_create, name="Verify", verify_url=verify.url)
        await asyncio.to_thread(register, server, app, 1, f"verified-token-{status}")
        if status < 300:
            client = await Client().connect(server, f"verified-token-{status}")
            await client.close()
        else:
            assert await refused_with(server, f"verified-token-{status}") == {"message": "token key mismatch"}
        assert verify.tokens == [f"verified-token-{status}"]  # asked once, with the token itself
    finally:
        verify.close()


async def test_a_slow_or_unreachable_verification_url_refuses_promptly(server):
    slow = VerifyServer(200, delay=4)
    try:
        app = await asyncio.to_thread(tenancy.app_create, name="Slow verify", verify_url=slow.url)
        await asyncio.to_thread(register, server, app, 1, "slow-token-1")
        started = time.monotonic()
        assert await refused_with(server, "slow-token-1") == {"message": "token key mismatch"}
        assert time.monotonic() - started < 3.5  # the timeout is 2 s; the original hung for 45 s
        # Meanwhile other apps' users connect at once.
        plain = await asyncio.to_thread(tenancy.app_create, name="No verify")
        await asyncio.to_thread(register, server, plain, 1, "plain-token-1")
        client = await Client().connect(server, "plain-token-1")
        await client.close()
    finally:
        slow.close()
    gone = await asyncio.to_thread(tenancy.app_create, name="Gone verify", verify_url=slow.url)
    await asyncio.to_thread(register, server, gone, 1, "gone-token-1")
    started = time.monotonic()
    assert await refused_with(server, "gone-token-1") == {"message": "token key mismatch"}
    assert time.monotonic() - started < 3.5


async def test_a_deleted_user_is_disconnected_and_can_no_longer_connect(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Deletion")
    other = await asyncio.to_thread(tenancy.app_create, name="Deletion other")
    user = await asyncio.to_thread(register, server, app, 1, "doomed-token-1")
    client = await Client().connect(server, "doomed-token-1")
    try:
        path = f"/user/{user['id']}"
        assert await asyncio.to_thread(rest, server, other, "DELETE", path) == (
            200,
            {"status": 404, "message": "ChatUser Not Found"},
        )
        assert client.sio.connected  # another app cannot delete it
        status, body = await asyncio.to_thread(rest, server, app, "DELETE", path, appId=app.public_id)
        assert status == 200 and body["id"] == user["id"] and body["deletedAt"]
        assert "token" not in json.dumps(body)
        await asyncio.wait_for(client.disconnected.wait(), 3)
        assert await refused_with(server, "doomed-token-1") == {"message": "token key mismatch"}
        assert await asyncio.to_thread(rest, server, app, "DELETE", path) == (
            200,
            {"status": 404, "message": "ChatUser Not Found"},
        )
        status, body = await asyncio.to_thread(
            rest,
            server,
            app,
            "POST",
            "/user",
            {"appId": app.public_id, "appUserId": 1, "firstName": "Back", "token": "doomed-token-2"},
        )
        assert (status, body) == (200, {"status": 404, "message": "ChatUser Not Found"})
        assert await refused_with(server, "doomed-token-2") == {"message": "token key mismatch"}
    finally:
        await client.close()
