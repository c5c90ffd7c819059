"""A first-party handshake subscribes to its user's bus group before its session check, so the
check and the greeting's read are one call (gateway.hub `_Held`, gateway.auth `connection_open`).
What came through the bus between that subscription and the connection joining its room is
never lost: a logout or ban ends the connection, anything else makes the hub check and read
again. In process, real database and bus, on a recording transport."""

import asyncio
import time

import pytest
from channels.layers import get_channel_layer

from accounts import services as account_services
from chatproject.bus import publish_now
from chatproject.bus.groups import user_group
from gateway import auth as auth_module
from gateway import hub as hub_module
from gateway import presence
from gateway.bridge import bridge
from gateway.hub import Hub
from gateway.protocols.expresschat import PROTOCOL as EXPRESSCHAT
from gateway.transports.handshake import Handshake

from .test_hub_hooks import Recorder

pytestmark = pytest.mark.django_db(transaction=True)

GREETING = ["user-id", "personal-chat-list", "group-chat-list"]


class Gone(Recorder):
    """The client is gone once greeted: `greet` stops before presence (not under test here)."""

    def is_open(self, conn_id: str) -> bool:
        return False


@pytest.fixture(autouse=True, params=["loop", "threads"])
def read_path(request, settings):
    """Every test here runs with the handshake's read on the event loop (gateway/reader.py) and
    on the read threads (CHAT HANDSHAKE_READ_ON_LOOP off)."""
    settings.CHAT = {**settings.CHAT, "HANDSHAKE_READ_ON_LOOP": request.param == "loop"}
    return request.param


@pytest.fixture
def reads(monkeypatch):
    """Counts the handshake's database calls: the first-party check with its snapshot (on the
    read threads or on the event loop), and the hub's check-and-read after a subscription."""
    counted = {"open": 0, "snapshot": 0, "on_loop": 0}
    real_open, real_snapshot = auth_module.connection_open, hub_module.connection_snapshot
    real_loop_open = auth_module.reader.connection_open

    def counting_open(**kwargs):
        counted["open"] += 1
        return real_open(**kwargs)

    async def counting_loop_open(**kwargs):
        counted["open"] += 1
        counted["on_loop"] += 1
        return await real_loop_open(**kwargs)

    def counting_snapshot(**kwargs):
        counted["snapshot"] += 1
        return real_snapshot(**kwargs)

    monkeypatch.setattr(auth_module, "connection_open", counting_open)
    monkeypatch.setattr(auth_module.reader, "connection_open", counting_loop_open)
    monkeypatch.setattr(hub_module, "connection_snapshot", counting_snapshot)
    return counted


def loop_reads(read_path: str) -> int:
    """How many of a handshake's reads ran on the event loop."""
    return 1 if read_path == "loop" else 0


@pytest.fixture
async def make_hub():
    made: list[Hub] = []

    def make(log: list) -> Hub:
        hub = Hub(EXPRESSCHAT, Gone(log))
        made.append(hub)
        return hub

    yield make
    for hub in made:
        bridge._sinks.remove(hub)
    # These tests start the bridge in their own event loop: stop it with the loop, so later
    # tests (and services publishing from threads) do not find a bridge bound to a closed loop.
    await bridge.stop()
    await get_channel_layer().flush()


def handshake(token: str) -> Handshake:
    return Handshake(auth={"token": token}, headers={}, remote="192.0.2.7")


def sent(log: list, conn_id: str) -> list[str]:
    return [entry[2] for entry in log if entry[0] == "send" and entry[1] == conn_id]


async def heard(hub: Hub, conn_id: str) -> None:
    """Until the bus message published during the handshake reached the bridge (bounded)."""
    watch = hub.opened[conn_id][1]
    for _ in range(500):
        if watch.heard:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the bus message never reached the bridge")


async def test_a_quiet_handshake_checks_the_session_and_reads_once(make_hub, make_user, reads, read_path):
    log: list = []
    hub = make_hub(log)
    alice = make_user("Alice")
    assert (await hub.connect("c1", handshake(alice.access))).accepted
    assert bridge.subscribed(user_group(alice.user.public_id))  # before the greeting
    await hub.greet("c1")
    assert sent(log, "c1") == GREETING
    assert reads == {"open": 1, "snapshot": 0, "on_loop": loop_reads(read_path)}
    assert "c1" not in hub.connections and "c1" not in hub.opened  # gone after its greeting
    assert not bridge.subscribed(user_group(alice.user.public_id))


async def test_a_refused_token_releases_the_subscription_it_took(make_hub, make_user, reads, read_path):
    log: list = []
    hub = make_hub(log)
    alice = make_user("Alice")
    await asyncio.to_thread(account_services.user_logout, access_token=alice.access)
    assert (await hub.connect("c1", handshake(alice.access))).accepted  # refused after CONNECT
    await hub.greet("c1")
    assert sent(log, "c1") == ["auth-failure"] and ("close", "c1") in log
    assert not bridge.subscribed(user_group(alice.user.public_id))
    assert reads == {"open": 1, "snapshot": 0, "on_loop": loop_reads(read_path)}


async def test_a_logout_between_the_subscription_and_the_admission_ends_the_connection(
    make_hub, make_user, reads, monkeypatch, read_path
):
    """The session check has passed and the greeting's read is under way when the logout
    commits, and its revocation reaches the process before the connection is admitted (no hub
    holds it yet, so none can cut it): the hub must check again, and the greeting must not go
    out."""
    log: list = []
    hub = make_hub(log)
    alice = make_user("Alice")
    group = user_group(alice.user.public_id)
    real_snapshot = auth_module.conversation_snapshot_for_user

    def logout_then_read(**kwargs):
        account_services.user_logout(access_token=alice.access)  # commits, then publishes
        for _ in range(500):  # until the bridge took the revocation off the bus (bounded)
            if any(watch.heard for watch in list(bridge._watches.get(group, ()))):
                break
            time.sleep(0.01)
        return real_snapshot(**kwargs)

    monkeypatch.setattr(auth_module, "conversation_snapshot_for_user", logout_then_read)
    real_loop_open = auth_module.reader.connection_open  # `reads`' counting wrapper

    async def loop_open_then_logout(**kwargs):
        found = await real_loop_open(**kwargs)  # the session's row said yes
        await asyncio.to_thread(logout_then_read, user=alice.user, kinds=())
        return found

    monkeypatch.setattr(auth_module.reader, "connection_open", loop_open_then_logout)
    assert (await hub.connect("c1", handshake(alice.access))).accepted
    assert hub.opened["c1"][1].heard  # heard before the admission
    await hub.greet("c1")
    assert sent(log, "c1") == ["auth-failure"] and ("close", "c1") in log
    assert "c1" not in hub.connections
    # Checked again: the revocation was heard.
    assert reads == {"open": 1, "snapshot": 1, "on_loop": loop_reads(read_path)}
    assert not bridge.subscribed(group)


async def test_a_revocation_after_the_admission_cuts_the_connection_before_its_greeting(
    make_hub, make_user, reads, read_path
):
    log: list = []
    hub = make_hub(log)
    alice = make_user("Alice")
    assert (await hub.connect("c1", handshake(alice.access))).accepted
    await asyncio.to_thread(account_services.user_logout, access_token=alice.access)
    for _ in range(500):  # until the hub cut it (bounded)
        if "c1" not in hub.connections:
            break
        await asyncio.sleep(0.01)
    await hub.greet("c1")
    assert sent(log, "c1") == ["auth-failure"] and ("close", "c1") in log
    assert reads == {"open": 1, "snapshot": 0, "on_loop": loop_reads(read_path)}
    assert not bridge.subscribed(user_group(alice.user.public_id))


async def test_a_bus_event_for_the_user_during_the_handshake_makes_the_hub_read_again(
    make_hub, make_user, reads, read_path
):
    log: list = []
    hub = make_hub(log)
    alice = make_user("Alice")
    assert (await hub.connect("c1", handshake(alice.access))).accepted
    # Any event for the user's group (a message, a membership change): this one renders to nothing.
    await publish_now({"type": "test.unknown"}, user_ids=[alice.user.public_id])
    await heard(hub, "c1")
    await hub.greet("c1")
    assert sent(log, "c1") == GREETING
    assert reads == {"open": 1, "snapshot": 1, "on_loop": loop_reads(read_path)}


async def test_a_connection_gone_before_its_greeting_releases_its_subscription(make_hub, make_user):
    log: list = []
    hub = make_hub(log)
    alice = make_user("Alice")
    assert (await hub.connect("c1", handshake(alice.access))).accepted
    await hub.forget("c1")
    assert "c1" not in hub.opened and not bridge._watches
    assert not bridge.subscribed(user_group(alice.user.public_id))


async def test_a_greeted_connection_counts_before_its_presence_entry_is_written(
    make_hub, make_user, monkeypatch
):
    """The presence entry waits for its batch (up to 20 ms): the connection is counted as open
    (metrics, the admin's live page, the protocol's goodbye when it ends) before that, so a
    client that leaves meanwhile is counted closed too."""
    log: list = []
    hub = make_hub(log)
    hub.transport = Recorder(log)  # the client stays: greet goes on to presence
    seen = []

    async def connected(conn):
        seen.append(conn.counted)
        await hub.forget(conn.id)  # the client leaves while its entry is being written

    monkeypatch.setattr(presence.tracker, "connected", connected)
    alice = make_user("Alice")
    assert (await hub.connect("c1", handshake(alice.access))).accepted
    conn = await hub.greet("c1")
    assert sent(log, "c1") == GREETING
    assert seen == [True]
    assert conn is not None and "c1" not in hub.connections
