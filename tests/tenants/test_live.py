"""Tenant users against a running server (the default mounts: ExpressChat for the apps realm
on the Socket.IO namespace /apps): the documented example, key rotation, token expiry, iat
revocation, handle revocation, app-wide revocation, the verification URL, and bad tokens.
Revocations must close live connections within a second."""

import asyncio
import json
import re
import time
import urllib.request
from pathlib import Path

import jwt
import pytest
import socketio

from accounts import tenancy
from accounts.models import User
from tests.conftest import REDIS_URL, _start_servers

from .helpers import VerifyServer, sign

pytestmark = pytest.mark.django_db(transaction=True)

NAMESPACE = "/apps"
DOC = Path(__file__).resolve().parents[2] / "docs" / "tenants.md"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(
        1, tmp_path_factory.mktemp("tenants"), REDIS_URL, {"CHAT_TENANT_VERIFY_TIMEOUT_SECONDS": "1"}
    )
    yield servers[0]
    servers[0].stop()


class Client:
    """A tenant user's ExpressChat client on /apps, recording events."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue] = {}
        self.disconnected = asyncio.Event()
        self.sio.on("disconnect", self.disconnected.set, namespace=NAMESPACE)

        @self.sio.on("*", namespace=NAMESPACE)
        async def any_event(event, *args):
            self.queue(event).put_nowait(args[0] if args else None)

    def queue(self, name: str) -> asyncio.Queue:
        return self.events.setdefault(name, asyncio.Queue())

    async def next(self, name: str, timeout: float = 5) -> object:
        return await asyncio.wait_for(self.queue(name).get(), timeout)

    async def connect(self, url: str, auth: dict, query: str = "") -> "Client":
        await self.sio.connect(
            url + (f"?{query}" if query else ""),
            namespaces=[NAMESPACE],
            auth=auth,
            transports=["websocket"],
            wait_timeout=5,
        )
        return self

    async def greeted(self, url: str, auth: dict) -> "Client":
        await self.connect(url, auth)
        await self.next("group-chat-list")
        return self

    async def refused(self, url: str, auth: dict, query: str = "") -> str:
        """Connect, expect ExpressChat's refusal (auth-failure, then a disconnect); its code."""
        await self.connect(url, auth, query)
        failure = await self.next("auth-failure")
        await asyncio.wait_for(self.disconnected.wait(), 5)
        return failure["code"]

    async def call(self, event: str, data: object) -> dict:
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=5)

    async def close(self) -> None:
        await self.sio.disconnect()


async def closed_within(client: Client, seconds: float) -> float:
    started = time.monotonic()
    await asyncio.wait_for(client.disconnected.wait(), seconds)
    return time.monotonic() - started


def api(server, app, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{server.url}/api/tenant/v1/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": f"AppKey {app.public_id}:{app.secret_1}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


async def test_the_documented_example_runs(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Docs example")
    text = DOC.read_text()
    code = re.search(r"<!-- example:start -->\n```python\n(.*?)```\n<!-- example:end -->", text, re.S).group(
        1
    )
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102  (our own documentation)
    namespace.update(SERVER=server.url, APP_ID=app.public_id, APP_SECRET=app.secret_1)
    assert await namespace["main"]() == ["hello u1", "hi b9"]
    users = await asyncio.to_thread(
        lambda: sorted(User.objects.filter(app=app).values_list("external_id", flat=True))
    )
    assert users == ["b9", "u1"]


async def test_a_rotated_key_keeps_working_until_it_is_the_older_one(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Rotation")
    old_1, old_2 = app.secret_1, app.secret_2
    _slot, new = await asyncio.to_thread(tenancy.app_key_rotate, app=app)
    for key in (new, old_2):
        client = await Client().greeted(server.url, {"token": sign(app, "u1", key=key)})
        await client.close()
    assert (
        await Client().refused(server.url, {"token": sign(app, "u1", key=old_1)}) == "authentication_failed"
    )


async def test_a_connection_ends_when_its_tenant_token_expires(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Expiry")
    client = await Client().greeted(server.url, {"token": sign(app, "u1", exp_in=2)})
    failure = await client.next("auth-failure", timeout=5)
    assert failure["code"] == "token_expired"
    await asyncio.wait_for(client.disconnected.wait(), 2)
    assert await Client().refused(server.url, {"token": sign(app, "u1", exp_in=-1)}) == "token_expired"


async def test_revoking_a_users_tokens_closes_their_connections_within_a_second(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Revoke user")
    token = sign(app, "u1", iat=int(time.time()) - 5)
    client = await Client().greeted(server.url, {"token": token})
    bystander = await Client().greeted(server.url, {"token": sign(app, "u2")})
    await asyncio.to_thread(api, server, app, "POST", "users/u1/revoke-tokens")
    assert await closed_within(client, 1.0) < 1.0
    assert (await client.next("auth-failure"))["code"]
    assert await Client().refused(server.url, {"token": token}) == "authentication_failed"
    await asyncio.sleep(1.1)  # a token signed a second later is good again
    fresh = await Client().greeted(server.url, {"token": sign(app, "u1")})
    assert bystander.sio.connected and fresh.sio.connected
    await fresh.close()
    await bystander.close()


async def test_revoking_an_apps_tokens_closes_every_connection_of_the_app_only(server):
    app = await asyncio.to_thread(tenancy.app_create, name="App-wide")
    other = await asyncio.to_thread(tenancy.app_create, name="Other")
    clients = [
        await Client().greeted(server.url, {"token": sign(app, u, iat=int(time.time()) - 5)})
        for u in ("a", "b")
    ]
    elsewhere = await Client().greeted(server.url, {"token": sign(other, "a")})
    await asyncio.to_thread(api, server, app, "POST", "revoke-tokens")
    for client in clients:
        assert await closed_within(client, 1.0) < 1.0
    await asyncio.sleep(0.3)
    assert elsewhere.sio.connected
    await elsewhere.close()


async def test_handles_connect_and_revoking_one_closes_its_connections(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Handles")
    other = await asyncio.to_thread(tenancy.app_create, name="Handles other")
    await asyncio.to_thread(api, server, app, "POST", "users", {"id": "seller-1", "name": "Seller"})
    issued = await asyncio.to_thread(api, server, app, "POST", "users/seller-1/handles")
    by_handle = await Client().greeted(server.url, {"handle": issued["handle"], "user_id": "seller-1"})
    by_token = await Client().greeted(server.url, {"token": sign(app, "seller-1")})
    # The claimed id must be the handle's user.
    assert await Client().refused(server.url, {"handle": issued["handle"], "user_id": "someone"}) == (
        "authentication_failed"
    )
    with pytest.raises(urllib.error.HTTPError) as info:  # another app cannot revoke it
        await asyncio.to_thread(api, server, other, "DELETE", f"handles/{issued['handle_id']}")
    assert info.value.code == 404
    await asyncio.to_thread(api, server, app, "DELETE", f"handles/{issued['handle_id']}")
    assert await closed_within(by_handle, 1.0) < 1.0
    await asyncio.sleep(0.3)
    assert by_token.sio.connected  # only the handle's connections
    assert await Client().refused(server.url, {"handle": issued["handle"]}) == "authentication_failed"
    await by_token.close()


@pytest.mark.parametrize("status", [200, 204, 401, 500])
async def test_the_verification_url_admits_only_2xx(server, status):
    verify = VerifyServer(status)
    try:
        app = await asyncio.to_thread(tenancy.app_create, name="Verify", verify_url=verify.url)
        token = sign(app, "u1")
        if status < 300:
            client = await Client().greeted(server.url, {"token": token})
            await client.close()
        else:
            assert await Client().refused(server.url, {"token": token}) == "authentication_failed"
        assert verify.tokens == [token]
    finally:
        verify.close()


async def test_a_slow_or_unreachable_verification_url_refuses_promptly(server):
    slow = VerifyServer(200, delay=3)
    try:
        app = await asyncio.to_thread(tenancy.app_create, name="Slow", verify_url=slow.url)
        started = time.monotonic()
        assert await Client().refused(server.url, {"token": sign(app, "u1")}) == "authentication_failed"
        assert time.monotonic() - started < 2.5  # the timeout is 1 s
        # Meanwhile the server's database thread was free: other users connect at once.
        plain = await asyncio.to_thread(tenancy.app_create, name="Plain")
        client = await Client().greeted(server.url, {"token": sign(plain, "u1")})
        await client.close()
    finally:
        slow.close()
    gone = await asyncio.to_thread(tenancy.app_create, name="Gone", verify_url=slow.url)
    started = time.monotonic()
    assert await Client().refused(server.url, {"token": sign(gone, "u1")}) == "authentication_failed"
    assert time.monotonic() - started < 2.5


async def test_bad_tokens_are_refused_and_store_nothing(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Bad input")
    now = int(time.time())
    claims = {"sub": "u1", "app": app.public_id, "exp": now + 60}
    bad = [
        "not-a-token",
        jwt.encode(claims, None, algorithm="none"),
        jwt.encode(claims, app.secret_1 * 2, algorithm="HS512"),
        jwt.encode(claims, "wrong-key-wrong-key-wrong-key-wrong-key", algorithm="HS256"),
        jwt.encode({**claims, "app": "0" * 24}, app.secret_1, algorithm="HS256"),
        jwt.encode({**claims, "sub": "a.b"}, app.secret_1, algorithm="HS256"),
        jwt.encode({**claims, "big": "x" * 4000}, app.secret_1, algorithm="HS256"),
        jwt.encode({**claims, "exp": now + 10 * 86400}, app.secret_1, algorithm="HS256"),
    ]
    for token in bad:
        assert await Client().refused(server.url, {"token": token}) == "authentication_failed"
    assert await Client().refused(server.url, {}) == "not_authenticated"
    stored = await asyncio.to_thread(lambda: User.objects.filter(app=app).count())
    assert stored == 0


async def test_first_party_tokens_do_not_open_the_apps_namespace(server, make_user):
    alice = await asyncio.to_thread(make_user, "Alice")
    assert await Client().refused(server.url, {"token": alice.access}) == "authentication_failed"


async def test_a_registered_token_connects_until_it_is_replaced(server):
    app = await asyncio.to_thread(tenancy.app_create, name="Registered")
    await asyncio.to_thread(api, server, app, "POST", "users", {"id": "42", "name": "Forty Two"})
    await asyncio.to_thread(api, server, app, "POST", "users/42/token", {"token": "tenant-issued-1"})
    client = await Client().greeted(server.url, {"token": "tenant-issued-1"})
    user_id = await client.call("fetch-user-details", {})
    assert user_id["ok"] and user_id["data"]["Name"] == "Forty Two"
    await client.close()
    await asyncio.to_thread(api, server, app, "POST", "users/42/token", {"token": "tenant-issued-2"})
    assert await Client().refused(server.url, {"token": "tenant-issued-1"}) == "authentication_failed"
    client = await Client().greeted(server.url, {"token": "tenant-issued-2"})
    await client.close()
