"""The per-process room cache that protocols with their own room stores share."""

from dataclasses import dataclass

import pytest

from gateway import rooms as rooms_module
from gateway.rooms import RoomDirectory


@dataclass(frozen=True)
class Room:
    conversation_id: str
    a: str
    b: str


class Store:
    def __init__(self):
        self.rooms: dict[str, Room] = {}
        self.reads: list[tuple[str, str]] = []

    def of_conversation(self, *, conversation_id):
        self.reads.append(("conversation", conversation_id))
        return self.rooms.get(conversation_id)

    def of_user(self, *, user_id):
        self.reads.append(("user", user_id))
        return [r for r in self.rooms.values() if user_id in (r.a, r.b)]


@pytest.fixture
def store(monkeypatch):
    # The store is in memory here: its selectors are called directly, not on the database thread.
    async def call(selector, **kwargs):
        return selector(**kwargs)

    monkeypatch.setattr(rooms_module, "call", call)
    return Store()


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rooms_module.time, "monotonic", lambda: now[0])
    return now


def directory(store, **kwargs):
    return RoomDirectory(
        of_conversation=store.of_conversation,
        of_user=store.of_user,
        parties=lambda r: (r.a, r.b),
        **kwargs,
    )


async def test_a_room_is_read_once_and_a_miss_only_for_a_while(store, clock):
    rooms = directory(store, miss_seconds=2.0)
    assert await rooms.room_of_conversation("c1") is None
    assert await rooms.room_of_conversation("c1") is None  # the miss is kept
    assert store.reads == [("conversation", "c1")]
    store.rooms["c1"] = Room("c1", "u1", "u2")  # made on another process
    clock[0] += 2.5
    assert await rooms.room_of_conversation("c1") == Room("c1", "u1", "u2")
    assert await rooms.room_of_conversation("c1") == Room("c1", "u1", "u2")
    assert store.reads == [("conversation", "c1"), ("conversation", "c1")]


async def test_a_users_rooms_expire_and_a_new_room_of_theirs_is_seen_at_once(store, clock):
    rooms = directory(store, user_rooms_seconds=5.0)
    store.rooms["c1"] = Room("c1", "u1", "u2")
    assert await rooms.rooms_of_user("u1") == [Room("c1", "u1", "u2")]
    store.rooms["c2"] = Room("c2", "u3", "u1")
    assert await rooms.rooms_of_user("u1") == [Room("c1", "u1", "u2")]  # kept
    rooms.remember(store.rooms["c2"])  # made here: its parties' lists are read again
    assert len(await rooms.rooms_of_user("u1")) == 2
    store.rooms["c3"] = Room("c3", "u1", "u4")
    clock[0] += 5.5
    assert len(await rooms.rooms_of_user("u1")) == 3
    assert [r for r in store.reads if r[0] == "user"] == [("user", "u1")] * 3


async def test_the_maps_are_bounded(store, clock):
    rooms = directory(store, kept=3)
    for n in range(10):
        store.rooms[f"c{n}"] = Room(f"c{n}", f"a{n}", f"b{n}")
        await rooms.room_of_conversation(f"c{n}")
        await rooms.rooms_of_user(f"a{n}")
    assert len(rooms._by_conversation) <= 3 and len(rooms._by_user) <= 3


async def test_room_of_event_reads_only_direct_conversations_of_the_kinds_asked(store, clock):
    rooms = directory(store)
    store.rooms["c1"] = Room("c1", "u1", "u2")
    direct = {"type": "message.created", "conversation": {"id": "c1", "kind": "direct"}}

    assert await rooms.room_of_event(direct, ("message.created",)) == store.rooms["c1"]
    assert await rooms.room_of_event(direct, ("typing.started",)) is None
    group = direct | {"conversation": {"id": "c1", "kind": "group"}}
    assert await rooms.room_of_event(group, ("message.created",)) is None
    assert await rooms.room_of_event({"type": "message.created"}, ("message.created",)) is None
    assert store.reads == [("conversation", "c1")]  # only the first asked the store
