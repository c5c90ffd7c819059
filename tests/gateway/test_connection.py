"""A connection's life leaves no reference cycle behind (gateway/connection.py, gateway/hub.py):
once the hub forgets it, reference counting frees it at once. Every held connection is tracked by
the cyclic collector, whose full collections cost ~650 ms with 10,000 connections held (issue
19): a cycle per connection was garbage only such a collection could free. And an in-band token
refresh still moves the connection's expiry timer."""

import gc
import time

import pytest

from gateway.auth import Authenticated
from gateway.connection import Connection
from gateway.hub import Hub
from gateway.protocol import Protocol
from gateway.transports.handshake import Handshake

from .test_hub_hooks import Recorder

pytestmark = pytest.mark.django_db(transaction=True)


class Plain(Protocol):
    name = "plain"
    handlers = {}


ADDRESS = "192.0.2.77"  # this module's own: the per-address counts are process-wide


@pytest.fixture
def hub():
    from gateway.bridge import bridge

    made = Hub(Plain(), Recorder([]))
    yield made
    bridge._sinks.remove(made)


@pytest.fixture(autouse=True)
def _no_count_left():
    """Whatever a test leaves admitted is forgotten, so no other test sees its address counted."""
    from gateway import hub as hub_module

    yield
    hub_module.live_by_address.pop(ADDRESS, None)


def _admitted(hub: Hub, user, conn_id: str, expires_at: int) -> Connection:
    authed = Authenticated(user, "s", expires_at, None, None)
    conn = hub._admit(conn_id, authed, Handshake(auth=None, headers={}, remote=ADDRESS))
    hub.addresses[conn_id] = ADDRESS
    from gateway import hub as hub_module

    hub_module.live_by_address[ADDRESS] += 1
    hub._schedule_expiry(conn)  # as `greet` does
    return conn


def _live(conn_id: str) -> list[Connection]:
    # `type`, not `isinstance`: the heap may hold weak proxies whose referent is gone.
    return [o for o in gc.get_objects() if type(o) is Connection and o.id == conn_id]


async def test_a_forgotten_connection_is_freed_without_the_cyclic_collector(hub, make_user):
    _admitted(hub, make_user().user, "c-freed", int(time.time()) + 3600)
    assert len(_live("c-freed")) == 1
    gc.disable()
    try:
        await hub.forget("c-freed")
        assert _live("c-freed") == []  # freed by reference counting, no collection ran
    finally:
        gc.enable()
        await hub.forget("c-freed")


async def test_a_moved_expiry_reschedules_the_connections_timer(hub, make_user):
    now = int(time.time())
    conn = _admitted(hub, make_user().user, "c-moved", now + 60)
    first = hub.timers["c-moved"]
    conn.expires_at = now + 3600
    conn.expiry_changed()  # what an in-band token refresh calls (gateway.actions.reauthenticate)
    assert first.cancelled() and hub.timers["c-moved"] is not first
    assert hub.timers["c-moved"].when() - first.when() > 3000
    await hub.forget("c-moved")
    assert "c-moved" not in hub.timers


async def test_a_connection_whose_token_expired_is_ended_by_its_timer(make_user):
    import asyncio

    from gateway.bridge import bridge

    log: list = []
    hub = Hub(Plain(), Recorder(log))
    try:
        _admitted(hub, make_user().user, "c-due", int(time.time()) - 1)  # due at once, no refresh token
        for _ in range(100):
            if "c-due" not in hub.connections:
                break
            await asyncio.sleep(0.02)
        assert "c-due" not in hub.connections and "c-due" not in hub.timers
        assert ("close", "c-due") in log
    finally:
        bridge._sinks.remove(hub)
