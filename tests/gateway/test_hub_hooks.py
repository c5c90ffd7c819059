"""The hub's protocol hooks around a connection's end and an event's answer, in process: a
greeted connection's end reaches `Protocol.goodbye` once (and a failing one never stops the
forgetting); `Outcome.after` runs once the answer's events went out (and a failing one is
logged, the answer stands)."""

from typing import Any

import pytest

from gateway import hub as hub_module
from gateway.bridge import bridge
from gateway.connection import Connection, TokenBucket
from gateway.hub import Hub
from gateway.protocol import Outcome, Protocol

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A transport that records what it was asked to do, and the hooks' calls in between."""

    name = "fake"

    def __init__(self, log: list) -> None:
        self.log = log

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        self.log.append(("send", conn_id, name, payload))

    async def fanout(self, target, name, payload, *, only, skip) -> int:
        return 0

    async def close(self, conn_id: str, *, reconnect: bool = False) -> None:
        self.log.append(("close", conn_id))

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        pass

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        self.log.append(("leave_local", conn_id))

    def is_open(self, conn_id: str) -> bool:
        return True


def make_protocol(log: list, *, goodbye_fails: bool = False, after_fails: bool = False) -> Protocol:
    async def later() -> None:
        log.append(("after",))
        if after_fails:
            raise RuntimeError("after failed")

    async def ping(conn: Connection, args: list[Any]) -> Outcome:
        return Outcome([("pong", args)], after=later)

    class Hooked(Protocol):
        name = "hooked"
        handlers = {"ping": ping}

        async def goodbye(self, conn: Connection) -> None:
            log.append(("goodbye", conn.id))
            if goodbye_fails:
                raise RuntimeError("goodbye failed")

    return Hooked()


@pytest.fixture
def make_hub():
    made: list[Hub] = []

    def make(protocol: Protocol, log: list) -> Hub:
        hub = Hub(protocol, Recorder(log))
        made.append(hub)
        return hub

    yield make
    for hub in made:  # the bridge keeps its sinks for the process's life: drop the test's
        bridge._sinks.remove(hub)


def add_connection(hub: Hub, user, conn_id: str, *, greeted: bool) -> Connection:
    """What `connect` and `greet` leave behind for one connection."""
    conn = Connection(
        id=conn_id,
        user=user,
        session_id="s",
        expires_at=0,
        protocol=hub.protocol.name,
        transport="fake",
        bucket=TokenBucket(10, 10),
    )
    conn.counted = greeted
    hub.connections[conn_id] = conn
    hub.by_user[conn.user_id].add(conn_id)
    hub.addresses[conn_id] = "192.0.2.1"
    hub_module.live_by_user[conn.user_id] += 1
    hub_module.live_by_address["192.0.2.1"] += 1
    return conn


async def test_forget_tells_the_protocol_goodbye_once_for_a_greeted_connection(make_hub, make_user):
    log: list = []
    hub = make_hub(make_protocol(log), log)
    add_connection(hub, make_user().user, "c1", greeted=True)
    await hub.forget("c1")
    await hub.forget("c1")  # idempotent: no second goodbye
    assert [entry for entry in log if entry[0] == "goodbye"] == [("goodbye", "c1")]
    assert log.index(("leave_local", "c1")) < log.index(("goodbye", "c1"))  # it no longer receives


async def test_forget_says_no_goodbye_for_a_connection_never_greeted(make_hub, make_user):
    log: list = []
    hub = make_hub(make_protocol(log), log)
    add_connection(hub, make_user().user, "c1", greeted=False)
    await hub.forget("c1")
    assert ("goodbye", "c1") not in log and "c1" not in hub.connections


async def test_a_failing_goodbye_is_swallowed_and_forgetting_completes(make_hub, make_user, caplog):
    log: list = []
    hub = make_hub(make_protocol(log, goodbye_fails=True), log)
    user = make_user().user
    add_connection(hub, user, "c1", greeted=True)
    await hub.forget("c1")
    assert ("goodbye", "c1") in log
    assert "c1" not in hub.connections and user.public_id not in hub.by_user
    assert hub_module.live_by_user[user.public_id] == 0
    assert "goodbye failed: protocol=hooked conn=c1" in caplog.text


@pytest.mark.parametrize("after_fails", [False, True])
async def test_after_runs_once_the_answer_went_out(make_hub, make_user, after_fails, caplog):
    log: list = []
    hub = make_hub(make_protocol(log, after_fails=after_fails), log)
    add_connection(hub, make_user().user, "c1", greeted=True)
    ack = await hub.handle("c1", "ping", ["x"])
    assert ack is None
    assert log == [("send", "c1", "pong", ["x"]), ("after",)]
    assert ("after-answer work failed" in caplog.text) is after_fails
    await hub.forget("c1")
