"""A member just added to a group misses none of its live messages (gateway.hub `_route`,
`_catch_up`). The interleaving is forced: the process's subscription to the conversation's bus
group is held back while messages are posted (their bus copies reach nobody here), then
released; the catch-up's read is held back while late bus copies arrive. What the new member's
connection gets must be what a connection routed all along gets, in seq order, each once,
for every protocol package.
"""

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chatproject.bus.groups import conversation_group, user_group
from chatproject.core import tasks
from gateway import hub as hub_module
from gateway.bridge import bridge
from gateway.connection import Connection, TokenBucket
from gateway.hub import Hub
from gateway.protocols.chatserver import PROTOCOL as CHAT_SERVER
from gateway.protocols.chatserver.state import ChatServerState
from gateway.protocols.czmessenger.protocol import PROTOCOL as CZ_MESSENGER
from gateway.protocols.expresschat import PROTOCOL as EXPRESSCHAT
from gateway.protocols.privatechat import PROTOCOL as PRIVATE_CHAT
from gateway.protocols.roomtoken.protocol import PROTOCOL as ROOM_TOKEN
from gateway.transports.handshake import Handshake
from groups import services as group_services
from messaging import services as msg_services

pytestmark = pytest.mark.django_db(transaction=True)

# A client that opted in to what its protocol offers (ExpressChat's group system messages).
HANDSHAKE = Handshake(auth=None, headers={}, query={"extensions": "1"}, namespace="/")
PROTOCOLS = [EXPRESSCHAT, CHAT_SERVER, PRIVATE_CHAT, CZ_MESSENGER, ROOM_TOKEN]
# The protocols whose clients see group conversations' messages (the others have direct chats
# only: a group's message renders to nothing there, live or caught up).
RENDER_GROUPS = {EXPRESSCHAT.name, CHAT_SERVER.name}


class Rooms:
    """A transport with local rooms (what `join_local` builds), recording what each connection
    was sent, in order."""

    name = "fake"

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = defaultdict(set)
        self.got: dict[str, list[tuple[str, Any]]] = defaultdict(list)

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        self.got[conn_id].append((name, payload))

    async def fanout(self, target, name, payload, *, only, skip) -> int:
        sent = 0
        for conn_id in sorted(self.rooms[target]):
            if conn_id not in skip and (only is None or conn_id in only):
                self.got[conn_id].append((name, payload))
                sent += 1
        return sent

    async def close(self, conn_id: str, *, reconnect: bool = False) -> None: ...

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            self.rooms[group].add(conn_id)

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            self.rooms[group].discard(conn_id)

    def is_open(self, conn_id: str) -> bool:
        return True


# A bound on waiting for what must happen, so that a test fails instead of hanging when it
# does not: never a measure of how fast anything is.
NEVER = 20.0


class Gate:
    """Holds a coroutine back at one point until the test opens it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def wait(self) -> None:
        self._reached.set()
        await self.opened.wait()

    async def reached(self) -> None:
        try:
            await asyncio.wait_for(self._reached.wait(), NEVER)
        except TimeoutError:
            raise AssertionError(f"{self.what} never began") from None


@pytest.fixture
def hubs():
    made: list[Hub] = []

    def make(protocol) -> Hub:
        hub = Hub(protocol, Rooms())
        made.append(hub)
        return hub

    yield make
    for hub in made:  # the bridge keeps its sinks for the process's life: drop the test's
        bridge._sinks.remove(hub)
        for conn_id in list(hub.connections):
            hub_module.live_by_user[hub.connections[conn_id].user_id] -= 1


def connect(hub: Hub, user, conn_id: str, *, rooms: tuple[str, ...] = (), opened: str = "") -> Connection:
    """A greeted connection of `user`, routed to its user's group and `rooms` (without the bus),
    with conversation `opened` open where its protocol asks clients to open (join) a room."""
    conn = Connection(
        id=conn_id,
        user=user,
        session_id="s",
        expires_at=0,
        protocol=hub.protocol.name,
        transport="fake",
        bucket=TokenBucket(10, 10),
        capabilities=hub.protocol.capabilities(HANDSHAKE),
        state=hub.protocol.new_state(HANDSHAKE),
    )
    conn.counted = True
    hub.connections[conn_id] = conn
    hub.by_user[conn.user_id].add(conn_id)
    hub_module.live_by_user[conn.user_id] += 1
    for room in (user_group(user.public_id), *rooms):
        conn.groups.append(room)
        hub.transport.rooms[room].add(conn_id)
    if opened and isinstance(conn.state, ChatServerState):  # its emits go to sockets in the room
        conn.state.join(opened, "Team")
    return conn


@pytest.fixture
def held_subscription(monkeypatch):
    """The bus subscription of the next group subscribed, held back at its SUBSCRIBE."""
    gate = Gate("the subscription")

    async def subscribe(groups: list[str]) -> None:
        await gate.wait()

    monkeypatch.setattr(bridge, "subscribe", subscribe)
    monkeypatch.setattr(bridge, "unsubscribe", lambda groups: asyncio.sleep(0))
    return gate


@pytest.fixture
def held_read(monkeypatch):
    """The catch-up's read, held back until the test opens it."""
    gate = Gate("the catch-up's read")
    read = hub_module.call_read

    async def call_read(fn, /, **kwargs):
        await gate.wait()
        return await read(fn, **kwargs)

    monkeypatch.setattr(hub_module, "call_read", call_read)
    return gate


def published(bus_sent, kind: str, target: str) -> dict:
    """The one event of `kind` the services handed the bus for `target`, taken off the list."""
    for i, (groups, event) in enumerate(bus_sent):
        if event["type"] == kind and target in groups:
            del bus_sent[i]
            return event
    raise AssertionError(f"nothing of {kind} published to {target}: {bus_sent}")


async def send(user, group_id: str, text: str) -> None:
    await sync_to_async(msg_services.message_send)(user=user, conversation_id=group_id, content=text)


async def settled() -> None:
    """Until every task the hub spawned (the catch-up) has ended."""
    for _ in range(int(NEVER / 0.01)):
        if not tasks.running():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the catch-up never ended")


def caught_up(hub: Hub) -> bool:
    """No catch-up of the hub holds anything back any more."""
    return all(catch.pending is None for catching in hub.catching.values() for catch in catching.values())


async def live_reference(protocol, hubs, user, room: str, events: list[dict]) -> list[tuple[str, Any]]:
    """What a connection of `user` routed to `room` all along is sent for `events`, live."""
    hub = hubs(protocol)
    connect(hub, user, "reference", rooms=(room,), opened=room[len("c.") :])
    for event in events:
        await hub.deliver(room, event)
    return hub.transport.got["reference"]


class Added:
    """Dave added to Alice's group "Team" (with Bob) while his connection's subscription to it
    is held back: m0 before him, m1 and m2 posted during the hold (their bus copies reach nobody
    here), the system message announcing him published before it too."""

    async def run(self, protocol, hubs, alice, bob, dave, bus_sent, held_subscription) -> None:
        self.alice, self.bob, self.bus_sent = alice, bob, bus_sent
        self.group = await sync_to_async(group_services.group_create)(
            user=alice.user, name="Team", member_ids=[bob.id]
        )
        self.room = room = conversation_group(self.group.public_id)
        bus_sent.clear()
        self.m0 = await self.post(alice, "m0")  # before Dave: not his
        await sync_to_async(group_services.group_member_add)(
            user=alice.user, group_id=self.group.public_id, member_id=dave.id
        )
        self.joined = published(bus_sent, "group.joined", user_group(dave.id))
        self.system = published(bus_sent, "message.created", room)  # "Alice added Dave"
        self.hub = hub = hubs(protocol)
        connect(hub, dave.user, "d1", opened=self.group.public_id)
        routing = asyncio.create_task(hub.deliver(user_group(dave.id), self.joined))
        await held_subscription.reached()
        self.m1 = await self.post(alice, "m1")
        self.m2 = await self.post(bob, "m2")
        held_subscription.opened.set()
        await routing
        self.joined_emits = list(hub.transport.got["d1"])

    async def post(self, user, text: str) -> dict:
        """Post a message; its bus copy, not delivered anywhere yet."""
        await send(user.user, self.group.public_id, text)
        return published(self.bus_sent, "message.created", self.room)

    def after_join(self) -> list[tuple[str, Any]]:
        return self.hub.transport.got["d1"][len(self.joined_emits) :]

    def contents(self) -> list[str]:
        return [payload["Content"] for name, payload in self.after_join() if name == "receive-group-message"]


@pytest.fixture
def added(hubs, alice, bob, dave, bus_sent, held_subscription):
    async def run(protocol) -> Added:
        scene = Added()
        await scene.run(protocol, hubs, alice, bob, dave, bus_sent, held_subscription)
        return scene

    return run


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
async def test_a_member_just_added_gets_what_was_posted_before_the_subscription_once_and_in_order(
    protocol, hubs, added, dave
):
    scene = await added(protocol)
    hub, room = scene.hub, scene.room
    # Subscribed: the bus brings late copies (the system message and m2, which the catch-up
    # also reads; m0, from before the membership) and m3, posted now.
    await hub.deliver(room, scene.system)
    await hub.deliver(room, scene.m2)
    await hub.deliver(room, scene.m0)
    m3 = await scene.post(scene.alice, "m3")
    await hub.deliver(room, m3)
    await settled()
    m4 = await scene.post(scene.bob, "m4")  # caught up: from now on live, as any member
    await hub.deliver(room, m4)

    expected = await live_reference(
        protocol, hubs, dave.user, room, [scene.system, scene.m1, scene.m2, m3, m4]
    )
    assert scene.after_join() == expected
    assert bool(expected) is (protocol.name in RENDER_GROUPS)
    assert caught_up(hub) and scene.m0["message"]["seq"] == scene.joined["seq"]
    if protocol is EXPRESSCHAT:  # it renders group messages: the test sees them
        assert scene.joined_emits[0][0] == "new-grp-added"
        assert scene.contents() == ["m1", "m2", "m3", "m4"]
        assert [name for name, _ in scene.after_join()].count("system-message") == 1


async def test_live_copies_that_arrive_while_the_catch_up_reads_are_held_back_and_sent_once(
    added, held_read, monkeypatch
):
    read = asyncio.get_running_loop().create_future()
    original = hub_module.messages_since

    def messages_since(**kwargs):  # tells the test when the catch-up's read is done
        found = original(**kwargs)
        read.get_loop().call_soon_threadsafe(read.set_result, None)
        return found

    monkeypatch.setattr(hub_module, "messages_since", messages_since)
    scene = await added(EXPRESSCHAT)
    hub, room = scene.hub, scene.room
    await held_read.reached()
    await hub.deliver(room, scene.m2)  # the read finds it too
    m3 = await scene.post(scene.alice, "m3")  # posted before the read: the read finds it too
    await hub.deliver(room, m3)
    await hub.deliver(room, scene.m0)
    assert scene.after_join() == []  # nothing overtakes the catch-up
    held_read.opened.set()
    await asyncio.wait_for(read, NEVER)
    m4 = await scene.post(scene.bob, "m4")  # posted after the read: only its live copy brings it
    await hub.deliver(room, m4)
    await settled()
    assert scene.contents() == ["m1", "m2", "m3", "m4"]
    assert [name for name, _ in scene.after_join()].count("system-message") == 1


async def test_a_late_live_copy_of_a_message_the_catch_up_sent_is_dropped_for_a_while(added, monkeypatch):
    scene = await added(EXPRESSCHAT)
    hub, room = scene.hub, scene.room
    await settled()
    assert scene.contents() == ["m1", "m2"]
    await hub.deliver(room, scene.m1)  # published after its commit: still on the way when read
    assert scene.contents() == ["m1", "m2"]
    m3 = await scene.post(scene.alice, "m3")
    await hub.deliver(room, m3)
    assert scene.contents() == ["m1", "m2", "m3"]
    # The window ends: the connection is routed like any other.
    window = hub.catching[room]["d1"]
    hub._release(room, "d1", window)
    assert room not in hub.catching and room in hub.connections["d1"].groups


async def test_events_held_back_keep_their_place_among_the_messages_read(
    hubs, alice, bob, dave, bus_sent, held_subscription, held_read
):
    """Bob's process learns of the new group; while his catch-up reads, Dave is added: the
    group's first system message (published before Bob's subscription) comes first, then what
    arrived live in its order, the second system message where its live copy arrived."""
    group = await sync_to_async(group_services.group_create)(
        user=alice.user, name="Team", member_ids=[bob.id]
    )
    room = conversation_group(group.public_id)
    created = published(bus_sent, "group.created", user_group(bob.id))
    hub = hubs(EXPRESSCHAT)
    connect(hub, bob.user, "b1")
    held_subscription.opened.set()
    await hub.deliver(user_group(bob.id), created)
    await held_read.reached()
    bus_sent.clear()
    await sync_to_async(group_services.group_member_add)(
        user=alice.user, group_id=group.public_id, member_id=dave.id
    )
    await hub.deliver(room, published(bus_sent, "group.member_added", room))
    await hub.deliver(room, published(bus_sent, "message.created", room))
    held_read.opened.set()
    await settled()
    got = [(name, payload.get("Seq")) for name, payload in hub.transport.got["b1"]]
    assert got == [
        ("create-group-chat-receiver", None),
        ("system-message", 1),
        ("add-member-success", None),
        ("system-message", 2),
    ]


async def test_a_new_group_s_members_get_its_first_system_message(
    hubs, alice, bob, bus_sent, held_subscription
):
    """A group's creation is published after its first system message: every member's routing
    is added too late for it."""
    group = await sync_to_async(group_services.group_create)(
        user=alice.user, name="Team", member_ids=[bob.id]
    )
    room = conversation_group(group.public_id)
    created = published(bus_sent, "group.created", user_group(bob.id))
    assert created["seq"] == 0
    hub = hubs(EXPRESSCHAT)
    connect(hub, bob.user, "b1")
    held_subscription.opened.set()
    await hub.deliver(user_group(bob.id), created)
    await settled()
    names = [name for name, _ in hub.transport.got["b1"]]
    assert names == ["create-group-chat-receiver", "system-message"]
    assert hub.transport.got["b1"][1][1]["ChatId"] == group.public_id
    assert caught_up(hub) and room in hub.connections["b1"].groups


async def test_a_member_removed_while_being_caught_up_gets_nothing_more(
    hubs, alice, bob, dave, bus_sent, held_subscription, held_read
):
    group = await sync_to_async(group_services.group_create)(
        user=alice.user, name="Team", member_ids=[bob.id]
    )
    room = conversation_group(group.public_id)
    await sync_to_async(group_services.group_member_add)(
        user=alice.user, group_id=group.public_id, member_id=dave.id
    )
    joined = published(bus_sent, "group.joined", user_group(dave.id))
    hub = hubs(EXPRESSCHAT)
    connect(hub, dave.user, "d1")
    held_subscription.opened.set()
    await send(alice.user, group.public_id, "m1")
    await hub.deliver(user_group(dave.id), joined)
    await held_read.reached()
    bus_sent.clear()
    await sync_to_async(group_services.group_member_remove)(
        user=alice.user, group_id=group.public_id, member_id=dave.id
    )
    await hub.deliver(room, published(bus_sent, "group.member_removed", room))
    await hub.deliver(user_group(dave.id), published(bus_sent, "group.removed", user_group(dave.id)))
    held_read.opened.set()
    await settled()
    names = [name for name, _ in hub.transport.got["d1"]]
    assert names == ["new-grp-added", "kicked-out"]
    assert room not in hub.connections["d1"].groups and not hub.catching


async def test_a_connection_gone_while_being_caught_up_leaves_nothing_behind(
    hubs, alice, bob, dave, bus_sent, held_subscription, held_read
):
    group = await sync_to_async(group_services.group_create)(
        user=alice.user, name="Team", member_ids=[bob.id]
    )
    await sync_to_async(group_services.group_member_add)(
        user=alice.user, group_id=group.public_id, member_id=dave.id
    )
    joined = published(bus_sent, "group.joined", user_group(dave.id))
    hub = hubs(EXPRESSCHAT)
    connect(hub, dave.user, "d1")
    held_subscription.opened.set()
    await hub.deliver(user_group(dave.id), joined)
    await held_read.reached()
    hub.connections["d1"].counted = False  # no goodbye, no presence: only the routing matters here
    await hub.forget("d1")
    held_read.opened.set()
    await settled()
    assert caught_up(hub)
    assert [name for name, _ in hub.transport.got["d1"]] == ["new-grp-added"]


@pytest.mark.parametrize("seq", [None, "0", True], ids=["none", "text", "bool"])
async def test_a_membership_event_without_a_seq_routes_as_before(
    hubs, alice, bob, bus_sent, held_subscription, seq
):
    """An event from a process of an earlier version (or one whose `seq` is no seq): routed,
    nothing caught up."""
    group = await sync_to_async(group_services.group_create)(
        user=alice.user, name="Team", member_ids=[bob.id]
    )
    created = published(bus_sent, "group.created", user_group(bob.id))
    del created["seq"]
    if seq is not None:
        created["seq"] = seq
    hub = hubs(EXPRESSCHAT)
    connect(hub, bob.user, "b1")
    held_subscription.opened.set()
    await hub.deliver(user_group(bob.id), created)
    await settled()
    assert [name for name, _ in hub.transport.got["b1"]] == ["create-group-chat-receiver"]
    assert conversation_group(group.public_id) in hub.connections["b1"].groups and not hub.catching
