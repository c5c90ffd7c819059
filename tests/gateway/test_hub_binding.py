"""Late binding in the hub (`Protocol.binds_late`): a connection that presented nothing is
admitted unbound; its events are dropped until one claims credentials that resolve; then it is
bound for good to that user and greeted before the event runs. In process, on a recording
transport."""

import asyncio
from typing import Any

import pytest
from django.utils import timezone

from accounts import tenancy
from accounts.identity import APPS, ID_HANDLE, Policy
from accounts.models import IdHandle
from gateway import hub as hub_module
from gateway import presence
from gateway.auth import Credentials
from gateway.bridge import bridge
from gateway.connection import Connection
from gateway.hub import Hub
from gateway.protocol import Answer, Outcome, Protocol
from gateway.transports.handshake import Handshake

from .test_hub_hooks import Recorder

pytestmark = pytest.mark.django_db(transaction=True)
ADDRESS = "192.0.2.7"


async def whoami(conn: Connection, args: list[Any]) -> Outcome:
    return Outcome([("you", conn.user_id)])


class Late(Protocol):
    name = "late"
    binds_late = True
    handlers = {"whoami": whoami, "hello": whoami}

    def credentials(self, handshake: Handshake) -> Credentials:
        return Credentials(None, None, renewable=False)

    def claim(self, event: str, args: list[Any]) -> Credentials | None:
        if event == "hello" and args and isinstance(args[0], str):
            return Credentials(None, None, renewable=False, handle=args[0])
        return None

    def answer_error(self, conn, event, error) -> Answer:
        return Answer([("refused", {"event": event, "bound": conn is not None})])


@pytest.fixture
def setup(make_user, monkeypatch):
    # Greeting subscribes to the bus and reports presence: both would start process-wide loops
    # on this test's event loop, which closes with the test. Neither is what is tested here.
    async def nothing(*args, **kwargs) -> None:
        return None

    monkeypatch.setattr(bridge, "subscribe", nothing)
    monkeypatch.setattr(bridge, "unsubscribe", nothing)
    monkeypatch.setattr(presence.tracker, "connected", nothing)
    monkeypatch.setattr(presence.tracker, "disconnected", nothing)
    app = tenancy.app_create(name="Late")
    user, _ = tenancy.external_user_upsert(app=app, external_id="ann")
    handle = tenancy.id_handle_issue(app=app, external_id="ann")
    log: list = []
    hub = Hub(Late(), Recorder(log), Policy(realm=APPS, forms=(ID_HANDLE,), protocol="late"))
    yield hub, log, user, handle
    bridge._sinks.remove(hub)


async def connect(hub: Hub, conn_id: str) -> None:
    admission = await hub.connect(conn_id, Handshake(auth=None, headers={}, remote=ADDRESS))
    assert admission.accepted
    assert await hub.greet(conn_id) is None  # nothing to greet yet
    assert conn_id in hub.unbound and conn_id not in hub.connections


async def test_events_before_a_claim_are_dropped_then_the_first_valid_handle_binds(setup):
    hub, log, user, handle = setup
    await connect(hub, "c1")
    await hub.handle("c1", "whoami", [])
    await hub.handle("c1", "hello", [user.public_id])  # a public id binds nothing
    await hub.handle("c1", "hello", ["not-a-handle-but-long-enough"])
    assert [entry[2] for entry in log if entry[0] == "send"] == ["refused", "refused", "refused"]
    assert "c1" in hub.unbound
    await hub.handle("c1", "hello", [handle.secret])
    assert log[-1] == ("send", "c1", "you", user.public_id)
    conn = hub.connections["c1"]
    assert conn.session_id == f"h:{handle.handle.public_id}" and conn.counted
    assert "c1" not in hub.unbound
    # Bound for good: later claims of anything else change nothing.
    await hub.handle("c1", "whoami", [])
    assert log[-1] == ("send", "c1", "you", user.public_id)
    await hub.forget("c1")
    assert hub_module.live_by_address[ADDRESS] == 0 and hub_module.live_by_user[user.public_id] == 0


async def test_a_revoked_handle_does_not_bind(setup):
    hub, log, user, handle = setup
    IdHandle.objects.filter(pk=handle.handle.pk).update(revoked_at=timezone.now())
    await connect(hub, "c2")
    await hub.handle("c2", "hello", [handle.secret])
    assert "c2" in hub.unbound and log[-1][2] == "refused"
    await hub.forget("c2")


async def test_forgetting_or_draining_an_unbound_connection_releases_it(setup):
    hub, log, _user, _handle = setup
    await connect(hub, "c3")
    assert hub_module.live_by_address[ADDRESS] == 1
    await hub.drain()
    assert ("close", "c3") in log
    await hub.forget("c3")
    await hub.forget("c3")  # idempotent
    assert "c3" not in hub.unbound and hub_module.live_by_address[ADDRESS] == 0


async def test_an_unbound_connection_is_closed_after_its_deadline_a_bound_one_is_not(setup, settings):
    hub, log, user, handle = setup
    settings.CHAT = {**settings.CHAT, "SOCKET_UNBOUND_SECONDS": 0.2}
    await connect(hub, "idle")
    await connect(hub, "binds")
    assert hub_module.unbound_by_address[ADDRESS] == 2
    await hub.handle("binds", "hello", [handle.secret])
    assert "binds" in hub.connections and hub_module.unbound_by_address[ADDRESS] == 1
    await asyncio.sleep(0.4)
    assert ("close", "idle") in log and ("close", "binds") not in log
    assert "idle" not in hub.unbound and "binds" in hub.connections
    assert hub_module.unbound_by_address[ADDRESS] == 0 and hub_module.live_by_address[ADDRESS] == 1
    await hub.forget("binds")
    assert hub_module.live_by_address[ADDRESS] == 0


async def test_unbound_connections_are_capped_per_address(setup, settings):
    hub, log, _user, handle = setup
    settings.CHAT = {**settings.CHAT, "SOCKET_MAX_UNBOUND_PER_ADDRESS": 2}
    await connect(hub, "u1")
    await connect(hub, "u2")
    refused = await hub.connect("u3", Handshake(auth=None, headers={}, remote=ADDRESS))
    assert refused.accepted  # accepted, then sent away to retry (too_many_connections)
    await hub.greet("u3")
    assert ("close", "u3") in log and "u3" not in hub.unbound
    assert hub_module.live_by_address[ADDRESS] == 2
    # Another address is not affected; binding one frees its place.
    other = await hub.connect("v1", Handshake(auth=None, headers={}, remote="192.0.2.8"))
    assert other.accepted and "v1" in hub.unbound
    await hub.handle("u1", "hello", [handle.secret])
    await connect(hub, "u4")
    for conn_id in ("u1", "u2", "u4", "v1"):
        await hub.forget(conn_id)
    assert hub_module.unbound_by_address == {} and hub_module.live_by_address[ADDRESS] == 0


async def test_a_binding_that_races_a_drain_binds_nothing_and_is_released(setup):
    hub, log, user, handle = setup
    await connect(hub, "late")
    hub.draining = True
    await hub.handle("late", "hello", [handle.secret])
    assert "late" not in hub.connections and "late" in hub.unbound  # the drain closes it
    await hub.forget("late")
    assert hub_module.live_by_address[ADDRESS] == 0 and hub_module.unbound_by_address == {}
    assert hub_module.live_by_user[user.public_id] == 0
