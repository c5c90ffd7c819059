"""Ending a login session ends its live sockets: logout (native and ExpressChat) cuts the
sockets of that session and no other, a ban cuts every socket of the user on every process, and
what was cut cannot come back. "Cut" means the client sees auth-failure, then a server
disconnect, within one second of the logout request or the ban (a product requirement).
"""

import asyncio
import os
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, connections, transaction
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.tokens import TokenPair, tokens_issue
from messaging.models import Membership

from .clients import SioClient, WsClient

pytestmark = pytest.mark.django_db(transaction=True)

CUT_WITHIN = 1.0  # seconds, from the start of the logout request or the ban
SERVER_DISCONNECT = socketio.AsyncClient.reason.SERVER_DISCONNECT  # "io server disconnect" in JS
WS_CLOSE_POLICY = 4401
REVOKED = {"reason": "Authentication failed", "code": "revoked"}
BANNED = {"reason": "Authentication failed", "code": "banned"}


# --- helpers ------------------------------------------------------------------------------


def expired_access(user, sid: str) -> str:
    token = AccessToken.for_user(user)
    token["sid"] = sid
    token.set_exp(lifetime=timedelta(seconds=-5))
    return str(token)


def cookie_header(**cookies: str) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


_opened: list[SioClient | WsClient] = []


async def _release(client: SioClient | WsClient) -> None:
    if isinstance(client, WsClient):
        if client.ws is not None and not client.closed.is_set():
            await client.close()
        return
    if client.sio.connected:
        await client.close()
    http = client.sio.eio.http
    if http is not None and not http.closed:
        # A polling client the server disconnected is left waiting on its last long-poll GET
        # (python-engineio holds it server-side until the ping timeout); abort it here rather
        # than leave a pending request behind when the test's event loop closes.
        await http.close()


@pytest.fixture(autouse=True)
async def _release_clients():
    """Every client a test opened is closed after it, whatever happened."""
    yield
    while _opened:
        await _release(_opened.pop())


async def sio(url: str, *, token: str | None = None, cookie: str | None = None, transport: str = "websocket"):
    """A greeted python-socketio client, authenticated natively (token) or by cookies."""
    headers = {"Cookie": cookie} if cookie else None
    client = SioClient()
    _opened.append(client)
    await client.connect(url, token=token, headers=headers, transports=[transport])
    await client.next("group-chat-list")
    return client


async def ws(url: str, *, token: str) -> WsClient:
    client = WsClient()
    _opened.append(client)
    await client.connect(url, headers={"Authorization": f"Bearer {token}"})
    await client.next("group-chat-list")
    return client


async def refused(url: str, *, token: str | None = None, cookie: str | None = None) -> dict:
    """Connect and expect the refusal sequence; return the auth-failure payload."""
    headers = {"Cookie": cookie} if cookie else None
    client = SioClient()
    _opened.append(client)
    await client.connect(url, token=token, headers=headers)
    failure = await client.next("auth-failure")
    assert await client.next("disconnect") == SERVER_DISCONNECT
    assert "user-id" not in client.names()
    return failure


async def _cut(client: SioClient | WsClient) -> tuple[Any, Any]:
    failure = await client.next("auth-failure", timeout=CUT_WITHIN * 2)
    if isinstance(client, WsClient):
        await client.closed.wait()
        return failure, client.ws.close_code
    return failure, await client.next("disconnect", timeout=CUT_WITHIN * 2)


async def cut_within_a_second(action: Awaitable, clients: list) -> tuple[Any, list[tuple[Any, Any]]]:
    """Run `action`; every client must be cut within CUT_WITHIN of its start. Returns the
    action's result and each client's (auth-failure payload, disconnect reason or close code)."""
    watch = asyncio.ensure_future(asyncio.wait_for(asyncio.gather(*(_cut(c) for c in clients)), CUT_WITHIN))
    try:
        result = await action
    except BaseException:
        watch.cancel()
        raise
    try:
        return result, await watch
    except TimeoutError:
        pytest.fail(f"not cut within {CUT_WITHIN}s; events seen: {[c.names() for c in clients]}")


async def still_serving(clients: list) -> None:
    """None of `clients` was told anything, and each still gets answers."""
    await asyncio.gather(*(c.none("auth-failure", wait=0.3) for c in clients))
    for client in clients:
        assert "disconnect" not in client.names()
        assert (await client.call("fetch-user-details"))["ok"] is True


async def post(url: str, path: str, *, json: Any = None, headers: dict | None = None):
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json=json, headers=headers or {}) as response,
    ):
        return response.status, await response.read(), response.headers.getall("Set-Cookie", [])


def native_logout(url: str, pair, *, bearer: str | None = None) -> Awaitable:
    """POST /api/auth/logout with the pair's refresh token, as the pair's owner (or `bearer`)."""
    headers = {"Authorization": f"Bearer {bearer or pair.access}"}
    return post(url, "/api/auth/logout", json={"refresh": pair.refresh}, headers=headers)


def second_session(chat_user) -> TokenPair:
    """Another login of the same user (another browser or device)."""
    return tokens_issue(user=chat_user.user)


def _server_channel_prefix(server) -> str:
    """The bus prefix the server processes were started with (read from the process itself, so
    this does not depend on how tests/conftest.py names it)."""
    environ = Path(f"/proc/{server.proc.pid}/environ")
    if environ.exists():
        for item in environ.read_bytes().split(b"\0"):
            if item.startswith(b"CHANNEL_PREFIX="):
                return item.split(b"=", 1)[1].decode()
    return f"chattest{os.getpid()}"  # tests/conftest.py _start_servers


@pytest.fixture
async def servers_bus(redis_server_pair, settings):
    """Publish from this test process onto the servers' Redis bus, as a management command or
    the admin would in production (same REDIS_URL, same prefix)."""
    layers = {
        alias: {**layer, "CONFIG": {**layer["CONFIG"]}} for alias, layer in settings.CHANNEL_LAYERS.items()
    }
    layers["default"]["CONFIG"]["prefix"] = _server_channel_prefix(redis_server_pair[0])
    settings.CHANNEL_LAYERS = layers  # channels drops its cached layers on this change
    yield
    await get_channel_layer().flush()


def _ban_and_commit(user) -> None:
    """user_ban in a worker thread, as a service is called from sync code; its on-commit
    publish runs there and goes out through this test's event loop."""
    try:
        services.user_ban(user=user, by=None, reason="spam")
    finally:
        connections.close_all()


ban = sync_to_async(_ban_and_commit)


# --- logout on one process ----------------------------------------------------------------


async def test_native_logout_cuts_that_sessions_sockets_within_a_second_and_no_others(
    live_server_proc, make_user
):
    url = live_server_proc.url
    alice, bob = make_user("Alice"), make_user("Bob")
    other = second_session(alice)
    doomed = [
        await sio(url, token=alice.access),
        await sio(url, token=alice.access, transport="polling"),
        await sio(url, cookie=cookie_header(access_token=alice.access, refresh_token=alice.refresh)),
    ]
    kept = [await sio(url, token=other.access), await sio(url, token=bob.access)]

    (status, _, _), outcomes = await cut_within_a_second(native_logout(url, alice), doomed)

    assert status == 204
    assert outcomes == [(REVOKED, SERVER_DISCONNECT)] * len(doomed)
    await still_serving(kept)
    # The session is over, not only its sockets: neither its token nor its cookies get back in.
    assert (await refused(url, token=alice.access))["code"] == "authentication_failed"
    expired = expired_access(alice.user, alice.sid)
    cookie = cookie_header(access_token=expired, refresh_token=alice.refresh)
    assert (await refused(url, cookie=cookie))["reason"] == "Authentication failed"


async def test_logout_everywhere_cuts_every_session_of_the_user_and_no_one_else(live_server_proc, make_user):
    url = live_server_proc.url
    alice, bob = make_user("Alice"), make_user("Bob")
    other = second_session(alice)
    doomed = [await sio(url, token=alice.access), await sio(url, token=other.access, transport="polling")]
    kept = [await sio(url, token=bob.access)]
    logout_all = post(url, "/api/auth/logout-all", headers={"Authorization": f"Bearer {alice.access}"})

    (status, _, _), outcomes = await cut_within_a_second(logout_all, doomed)

    assert status == 204
    assert outcomes == [(REVOKED, SERVER_DISCONNECT)] * len(doomed)
    await still_serving(kept)
    for pair in (alice, other):  # neither login gets back in, nor refreshes
        assert (await refused(url, token=pair.access))["code"] == "authentication_failed"
        status, _, _ = await post(url, "/api/auth/refresh", json={"refresh": pair.refresh})
        assert status == 401


async def test_native_logout_with_another_users_refresh_token_is_refused_and_cuts_nothing(
    live_server_proc, make_user
):
    url = live_server_proc.url
    alice, bob = make_user("Alice"), make_user("Bob")
    a = await sio(url, token=alice.access)
    status, _, _ = await native_logout(url, alice, bearer=bob.access)
    assert status == 403
    await still_serving([a])


COOKIE_VARIANTS = {
    # The session comes from the refresh cookie, or else from the access cookie, even expired.
    "both": lambda u: cookie_header(access_token=u.access, refresh_token=u.refresh),
    "refresh-only": lambda u: cookie_header(refresh_token=u.refresh),
    "expired-access-only": lambda u: cookie_header(access_token=expired_access(u.user, u.sid)),
    "bad-refresh-good-access": lambda u: cookie_header(refresh_token="not-a-jwt", access_token=u.access),
}


@pytest.mark.parametrize("variant", list(COOKIE_VARIANTS))
async def test_expresschat_logout_cuts_the_cookie_sessions_sockets_and_no_others(
    live_server_proc, make_user, variant
):
    url = live_server_proc.url
    alice = make_user("Alice")
    other = second_session(alice)
    doomed = [
        await sio(url, cookie=cookie_header(access_token=alice.access, refresh_token=alice.refresh)),
        await sio(url, token=alice.access, transport="polling"),
    ]
    kept = [await sio(url, cookie=cookie_header(access_token=other.access, refresh_token=other.refresh))]
    sent = COOKIE_VARIANTS[variant](alice)

    (status, body, set_cookies), outcomes = await cut_within_a_second(
        post(url, "/logout", headers={"Cookie": sent}), doomed
    )

    assert (status, body) == (200, b'{"message":"User Logged out successfully"}')
    cleared = sorted(line.split("=", 1)[0] for line in set_cookies)
    assert cleared == sorted(part.split("=", 1)[0] for part in sent.split("; "))
    assert all("expires=Thu, 01 Jan 1970 00:00:00 GMT" in line for line in set_cookies)
    assert outcomes == [(REVOKED, SERVER_DISCONNECT)] * len(doomed)
    await still_serving(kept)


async def test_expresschat_logout_with_forged_cookies_cuts_nothing(live_server_proc, make_user):
    url = live_server_proc.url
    alice = make_user("Alice")
    a = await sio(url, cookie=cookie_header(access_token=alice.access, refresh_token=alice.refresh))
    status, body, _ = await post(url, "/logout", headers={"Cookie": "access_token=x; refresh_token=y"})
    assert (status, body) == (200, b'{"message":"User Logged out successfully"}')
    await still_serving([a])


async def test_logout_while_a_socket_of_that_session_is_still_connecting_cuts_it_too(
    live_server_proc, make_user
):
    """A handshake that passed the session check but is not yet subscribed to the bus when the
    logout commits must not end up as a live socket of a revoked session. The handshake is held
    in that gap deterministically: after authenticating, Hub.open reads the user's memberships,
    and this test holds an exclusive lock on that table meanwhile."""
    if connection.vendor != "postgresql":
        pytest.skip("holding the handshake between two queries needs PostgreSQL's LOCK TABLE")
    url = live_server_proc.url
    alice = make_user("Alice")
    client = SioClient()
    _opened.append(client)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Membership._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        connecting = asyncio.ensure_future(client.connect(url, token=alice.access))
        await _until_a_query_waits_for(Membership._meta.db_table)  # the session check has passed
        status, _, _ = await native_logout(url, alice)
        assert status == 204
        await asyncio.sleep(0.3)  # the revocation has been published and dispatched
    await connecting
    try:  # the handshake was under way during the logout, so it must end cut, greeted or not
        await asyncio.wait_for(_cut(client), CUT_WITHIN)
    except TimeoutError:
        pytest.fail(f"a socket of a logged-out session is live: {client.names()}")
    assert "group-chat-list" not in client.names()  # refused before the greeting


async def _until_a_query_waits_for(table: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", [table]
            )
            if cursor.fetchone()[0]:
                return
        await asyncio.sleep(0.02)
    pytest.fail(f"no query started waiting for {table}")


# --- two processes on Redis ---------------------------------------------------------------


async def test_logout_on_one_process_cuts_that_sessions_sockets_on_the_other(redis_server_pair, make_user):
    one, two = redis_server_pair
    alice = make_user("Alice")
    other = second_session(alice)
    doomed = [
        await sio(two.url, token=alice.access),
        await sio(two.url, token=alice.access, transport="polling"),
    ]
    kept = [await sio(two.url, token=other.access), await sio(one.url, token=other.access)]

    (status, _, _), outcomes = await cut_within_a_second(native_logout(one.url, alice), doomed)

    assert status == 204
    assert outcomes == [(REVOKED, SERVER_DISCONNECT)] * len(doomed)
    await still_serving(kept)


async def test_ban_cuts_every_socket_of_the_user_on_both_processes_and_keeps_them_out(
    redis_server_pair, servers_bus, make_user
):
    one, two = redis_server_pair
    alice, bob = make_user("Alice"), make_user("Bob")
    other = second_session(alice)
    doomed = [
        await sio(one.url, token=alice.access),
        await sio(one.url, cookie=cookie_header(access_token=other.access, refresh_token=other.refresh)),
        await sio(two.url, token=other.access, transport="polling"),
        await sio(two.url, token=alice.access),
        await ws(two.url, token=other.access),
    ]
    kept = [await sio(one.url, token=bob.access), await sio(two.url, token=bob.access)]

    _, outcomes = await cut_within_a_second(ban(alice.user), doomed)

    assert outcomes[:-1] == [(BANNED, SERVER_DISCONNECT)] * (len(doomed) - 1)
    assert outcomes[-1] == (BANNED, WS_CLOSE_POLICY)  # the /ws/ client
    await still_serving(kept)
    for server in (one, two):
        assert (await refused(server.url, token=alice.access))["code"] == "banned"
        fresh = second_session(alice)  # even a session started after the ban
        assert (await refused(server.url, token=fresh.access))["code"] == "banned"
        cookie = cookie_header(
            access_token=expired_access(alice.user, other.sid), refresh_token=other.refresh
        )
        assert (await refused(server.url, cookie=cookie))["reason"] == "Authentication failed"
