"""The new ExpressChat renderers (pure), the presence aggregate, and both presence stores:
the in-process dict, and Redis with expiry and the reaping of a dead process."""

import asyncio
import json
import os
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from chatproject.bus.groups import user_group
from chatproject.core.errors import ApplicationError, ErrorCode
from gateway import presence
from gateway.protocols import expresschat as protocol
from gateway.protocols.expresschat import ACTOR, ALL, Emit
from tests.conftest import REDIS_URL
from tests.messaging.conftest import direct, group

CHAT = {"id": "9922775ffc7a8f5601833e6d", "kind": "direct"}
ALICE, BOB = "6535cce88ed2dbe9142a6760", "c1842614d252a203c6c34c23"


def rendered(event: dict) -> list[Emit]:
    emits = protocol.render(json.loads(json.dumps(event)))  # what Redis would carry
    for emit in emits:
        assert json.loads(json.dumps(emit.payload)) == emit.payload
    return emits


# --- renderers -----------------------------------------------------------------------------------


def test_unread_goes_to_the_readers_own_devices_only():
    event = {"type": "conversation.unread", "actor": ALICE, "conversation": CHAT, "seq": 4, "unread": 1}
    (emit,) = rendered(event | {"unread_total": 7})
    assert emit == Emit("unread", {"ChatId": CHAT["id"], "Unread": 1, "Total": 7, "Seq": 4}, to=ACTOR)


def test_delivered_is_a_receipt_for_everyone_but_the_recipient():
    (emit,) = rendered({"type": "conversation.delivered", "actor": BOB, "conversation": CHAT, "seq": 3})
    assert emit == Emit(
        "message-delivered", {"ChatId": CHAT["id"], "UserId": BOB, "Seq": 3}, skip=(ACTOR,), receipt=True
    )


@pytest.mark.parametrize("kind", ["direct", "group"])
def test_read_acks_are_receipts(kind):
    event = {"type": "conversation.read", "actor": BOB, "conversation": CHAT | {"kind": kind}, "seq": 2}
    (emit,) = rendered(event)
    assert emit.receipt is True
    assert emit.skip == (ACTOR,)


def test_typing_carries_who_where_and_when_it_expires_and_skips_the_typist():
    event = {
        "type": "typing.started",
        "actor": ALICE,
        "actor_name": "Alice",
        "conversation": CHAT,
        "expires_in": 6,
    }
    (start,) = rendered(event)
    assert start == Emit(
        "typing", {"ChatId": CHAT["id"], "UserId": ALICE, "UserName": "Alice", "ExpiresIn": 6}, skip=(ACTOR,)
    )
    (stop,) = rendered(event | {"type": "typing.stopped"})
    assert stop == Emit("stop-typing", {"ChatId": CHAT["id"], "UserId": ALICE}, skip=(ACTOR,))
    assert not start.receipt and not stop.receipt


def test_presence_is_rendered_for_everyone_it_was_published_to():
    event = {
        "type": "presence.changed",
        "actor": ALICE,
        "user_id": ALICE,
        "state": "offline",
        "last_seen": "2026-11-21T07:15:42.318Z",
    }
    (emit,) = rendered(event)
    assert emit == Emit(
        "presence",
        {"UserId": ALICE, "Online": False, "State": "offline", "LastSeen": "2026-11-21T07:15:42.318Z"},
        to=ALL,
    )
    (online,) = rendered(event | {"state": "background", "last_seen": None})
    assert online.payload["Online"] is True


def test_every_new_event_is_a_handler():
    for name in ("mark-read", "message-delivered", "fetch-seen-by", "typing", "stop-typing"):
        assert name in protocol.HANDLERS
    assert {"presence-state", "fetch-presence"} <= set(protocol.HANDLERS)


# --- the aggregate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], "offline"),
        (["background"], "background"),
        (["background", "background"], "background"),
        (["background", "foreground"], "foreground"),
    ],
)
def test_a_user_is_as_present_as_their_most_present_device(states, expected):
    assert presence.aggregate(states) == expected


# --- the in-process store, and what a viewer may see -------------------------------------------


@pytest.fixture
def memory_store(monkeypatch) -> presence.MemoryStore:
    store = presence.MemoryStore()
    monkeypatch.setattr(presence.tracker, "_store", store)
    return store


@pytest.mark.django_db
def test_presence_of_hides_hidden_users_from_everyone_but_themselves(memory_store, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    seen = timezone.now() - timedelta(minutes=3)
    alice.user.presence_hidden = True
    alice.user.save(update_fields=["presence_hidden"])
    bob.user.last_seen_at = seen
    bob.user.save(update_fields=["last_seen_at"])
    async_to_sync(memory_store.put)(alice.id, "p/1", "background")
    by_bob = {p.user_id: p for p in presence.presence_of(user_ids=[alice.id, bob.id], viewer_id=bob.id)}
    assert (by_bob[alice.id].state, by_bob[alice.id].last_seen) == ("offline", None)
    assert (by_bob[bob.id].state, by_bob[bob.id].last_seen) == ("offline", seen)
    (own,) = presence.presence_of(user_ids=[alice.id], viewer_id=alice.id)
    assert (own.state, own.online) == ("background", True)


@pytest.mark.django_db
def test_presence_list_answers_only_for_people_sharing_a_chat(memory_store, make_user):
    alice, bob, carol, dave = (make_user(n) for n in ("Alice", "Bob", "Carol", "Dave"))
    direct(alice, bob)
    group(alice, carol)
    async_to_sync(memory_store.put)(dave.id, "p/9", "foreground")
    async_to_sync(memory_store.put)(carol.id, "p/8", "foreground")
    found = presence.presence_list(
        viewer=alice.user, user_ids=[dave.id, carol.id, bob.id, "x", alice.id, bob.id]
    )
    assert [(p.user_id, p.state) for p in found] == [
        (carol.id, "foreground"),
        (bob.id, "offline"),
        (alice.id, "offline"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("user_ids", ["abc", [1], None, ["0" * 24] * 501])
def test_presence_list_refuses_what_is_not_a_bounded_list_of_ids(make_user, user_ids):
    with pytest.raises(ApplicationError) as excinfo:
        presence.presence_list(viewer=make_user().user, user_ids=user_ids)
    assert excinfo.value.code == ErrorCode.INVALID


async def test_memory_store_counts_connections_and_remembers_what_was_published():
    store = presence.MemoryStore()
    await store.put(ALICE, "p/1", "foreground")
    await store.put(ALICE, "p/2", "background")
    assert sorted(store.states([ALICE, BOB])[ALICE]) == ["background", "foreground"]
    assert store.states([BOB]) == {BOB: []}
    await store.drop(ALICE, "p/1", last_local=False)
    assert store.states([ALICE]) == {ALICE: ["background"]}
    assert await store.swap_published(ALICE, "background") == "offline"  # nothing published yet
    assert await store.swap_published(ALICE, "background") == "background"


# --- the Redis store -----------------------------------------------------------------------------

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL not set")


def redis_store(proc: str, prefix: str, ttl: float) -> presence.RedisStore:
    return presence.RedisStore(REDIS_URL, prefix, proc, ttl)


@pytest.fixture
def prefix() -> str:
    return f"presencetest{os.getpid()}-{uuid.uuid4().hex[:8]}"


@needs_redis
async def test_redis_entries_expire_unless_refreshed_by_the_heartbeat(prefix):
    store = redis_store("one", prefix, ttl=0.4)
    try:
        await store.put(ALICE, "one/1", "foreground")
        assert store.states([ALICE]) == {ALICE: ["foreground"]}
        for _ in range(3):  # 0.75 s with a heartbeat every 0.25 s: still there
            await asyncio.sleep(0.25)
            await store.heartbeat([(ALICE, "one/1", "background")])
        assert store.states([ALICE]) == {ALICE: ["background"]}
        await asyncio.sleep(0.5)  # no heartbeat for longer than the TTL
        assert store.states([ALICE]) == {ALICE: []}
    finally:
        await store.close()


@needs_redis
async def test_the_heartbeat_refreshes_every_entry_past_one_script_chunk_and_never_shortens_a_ttl(prefix):
    store, longer = redis_store("one", prefix, ttl=0.4), redis_store("two", prefix, ttl=30)
    users = [f"{i:024x}" for i in range(presence.HEARTBEAT_CHUNK + 3)]
    try:
        await longer.put(users[-1], "two/1", "foreground")  # another process's longer expiry
        await store.heartbeat([(user, f"one/{i}", "background") for i, user in enumerate(users)])
        states = store.states(users)
        assert states[users[0]] == ["background"]
        assert states[users[-2]] == ["background"]  # in the second chunk
        assert sorted(states[users[-1]]) == ["background", "foreground"]
        client = store._client()
        assert 0 < await client.pttl(f"{prefix}:presence:u:{users[-2]}") <= 400
        assert await client.pttl(f"{prefix}:presence:u:{users[-1]}") > 20_000
        assert await client.scard(f"{prefix}:presence:p:one") == len(users)
        await asyncio.sleep(0.5)  # no heartbeat for longer than the TTL
        assert store.states(users[:1]) == {users[0]: []}
    finally:
        await store.close()
        await longer.close()


@needs_redis
async def test_a_live_process_reaps_a_dead_one_once_and_keeps_others_entries(prefix):
    dead, live, other = (redis_store(p, prefix, ttl=0.3) for p in ("dead", "live", "other"))
    try:
        assert await dead.heartbeat([(ALICE, "dead/1", "foreground"), (BOB, "dead/2", "foreground")]) is True
        await dead.put(ALICE, "dead/1", "foreground")
        await live.put(ALICE, "live/1", "background")
        assert await live.reap() == {}  # nobody is dead yet
        await asyncio.sleep(0.4)  # "dead" stops beating
        await live.heartbeat([(ALICE, "live/1", "background")])
        await other.heartbeat([])
        reaped = await live.reap()
        assert set(reaped) == {ALICE, BOB}
        assert all(abs((at - timezone.now()).total_seconds()) < 5 for at in reaped.values())
        assert await other.reap() == {}  # done once
        assert live.states([ALICE, BOB]) == {ALICE: ["background"], BOB: []}
        client = live._client()
        assert await client.hkeys(f"{prefix}:presence:u:{ALICE}") == ["live/1"]
        assert await client.zscore(f"{prefix}:presence:procs", "dead") is None
    finally:
        for store in (dead, live, other):
            await store.close()


@needs_redis
async def test_a_process_with_a_longer_ttl_is_not_reaped_by_one_with_a_shorter_ttl(prefix):
    slow, fast = redis_store("slow", prefix, ttl=5), redis_store("fast", prefix, ttl=0.2)
    try:
        await slow.heartbeat([(ALICE, "slow/1", "foreground")])
        await asyncio.sleep(0.3)
        await fast.heartbeat([])
        assert await fast.reap() == {}
        assert fast.states([ALICE]) == {ALICE: ["foreground"]}
    finally:
        await slow.close()
        await fast.close()


@needs_redis
async def test_redis_publishes_a_state_once_across_processes(prefix):
    one, two = redis_store("one", prefix, ttl=1), redis_store("two", prefix, ttl=1)
    try:
        assert await one.swap_published(ALICE, "foreground") == "offline"
        assert await two.swap_published(ALICE, "foreground") == "foreground"  # two stays quiet
        assert await two.swap_published(ALICE, "offline") == "foreground"
    finally:
        await one.close()
        await two.close()


@needs_redis
async def test_redis_swaps_a_batch_of_published_states_each_as_alone(prefix):
    one, two = redis_store("one", prefix, ttl=1), redis_store("two", prefix, ttl=1)
    try:
        assert await one.swap_published_many([]) == []
        assert await one.swap_published(ALICE, "background") == "offline"
        batch = [(ALICE, "foreground"), (BOB, "background")]
        assert await two.swap_published_many(batch) == ["background", "offline"]
        assert await one.swap_published_many(batch) == ["foreground", "background"]
    finally:
        await one.close()
        await two.close()


async def test_memory_store_swaps_a_batch_of_published_states_each_as_alone():
    store = presence.MemoryStore()
    assert await store.swap_published_many([(ALICE, "foreground"), (BOB, "offline")]) == [
        "offline",
        "offline",
    ]
    assert await store.swap_published_many([(ALICE, "background")]) == ["foreground"]


@needs_redis
async def test_redis_writes_entries_in_the_order_asked_even_within_one_batch(prefix):
    """Connections' entries are written in batches (one script call): a put and a drop of the
    same entry asked for together end as asked, and the process's user set follows."""
    store = redis_store("one", prefix, ttl=5)
    try:
        await asyncio.gather(
            store.put(ALICE, "one/1", "foreground"),
            store.drop(ALICE, "one/1", last_local=True),
            store.put(BOB, "one/2", "background"),
            store.put(ALICE, "one/3", "background"),
        )
        assert store.states([ALICE, BOB]) == {ALICE: ["background"], BOB: ["background"]}
        client = store._client()
        assert sorted(await client.smembers(f"{prefix}:presence:p:one")) == sorted([ALICE, BOB])
        assert 0 < await client.pttl(f"{prefix}:presence:u:{ALICE}") <= 5000
        await store.drop(BOB, "one/2", last_local=True)
        assert await client.smembers(f"{prefix}:presence:p:one") == {ALICE}
    finally:
        await store.close()


@needs_redis
async def test_redis_entry_writes_asked_for_within_the_linger_share_one_script_call(prefix, monkeypatch):
    """Handshakes arrive apart, not together: a write asked for while the first of a batch
    waits (WRITE_LINGER_SECONDS, made long here so the test does not depend on the machine's
    speed) goes in the same script call, in the order asked, and every caller returns once it
    is written."""
    monkeypatch.setattr(presence, "WRITE_LINGER_SECONDS", 1.0)
    store = redis_store("one", prefix, ttl=5)
    script = store._client().register_script(presence._WRITE_LUA)
    calls = []

    async def counted(*, keys, args):
        calls.append(len(keys) - 1)
        return await script(keys=keys, args=args)

    store._write = counted
    try:
        first = asyncio.create_task(store.put(ALICE, "one/1", "foreground"))
        await asyncio.sleep(0)  # the batch's writer now waits for others to join
        second = asyncio.create_task(store.put(BOB, "one/2", "background"))
        await asyncio.sleep(0)
        third = asyncio.create_task(store.drop(ALICE, "one/1", last_local=True))
        await asyncio.gather(first, second, third)
        assert calls == [3]
        assert store.states([ALICE, BOB]) == {ALICE: [], BOB: ["background"]}
    finally:
        await store.close()


@needs_redis
async def test_redis_writes_an_end_at_once(prefix, monkeypatch):
    """Only a batch begun by a connection's entry waits for others: callers that end
    connections one after another (a revocation) do not wait that long for each."""
    monkeypatch.setattr(presence, "WRITE_LINGER_SECONDS", 60.0)
    store = redis_store("one", prefix, ttl=5)
    try:
        for key in ("one/1", "one/2"):
            await asyncio.wait_for(store.drop(ALICE, key, last_local=False), 10)
    finally:
        await store.close()


# --- the debounced publisher ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the tracker reads in the database thread
async def test_changes_due_together_are_published_in_one_batch(
    make_user, monkeypatch, settings, memory_store
):
    bus_sent = []

    async def record(groups, event) -> None:
        assert json.loads(json.dumps(event)) == event
        bus_sent.append((groups, event))

    monkeypatch.setattr("chatproject.bus.transport.send_async", record)
    settings.CHAT = {**settings.CHAT, "PRESENCE_DEBOUNCE_SECONDS": 0.05}
    alice, bob, carol, dave = (make_user(name) for name in ("Alice", "Bob", "Carol", "Dave"))
    await asyncio.to_thread(direct, alice, bob)  # services publish on commit: not in the loop's thread
    await asyncio.to_thread(direct, alice, carol)
    calls = []
    real_call = presence.call

    async def counting(fn, /, **kwargs):
        calls.append(fn.__name__)
        return await real_call(fn, **kwargs)

    monkeypatch.setattr(presence, "call", counting)
    tracker = presence.tracker
    published = tracker.stats["published"]
    for user in (alice, bob, dave):  # Dave shares no chat: nobody to tell
        await tracker.store.put(user.id, f"p/{user.id}", "foreground")
        tracker.changed(user.id)
    tracker.changed(alice.id)  # already pending: nothing more
    for _ in range(200):  # bounded wait for the batch, not a timing assertion
        if tracker.stats["published"] == published + 3 and not tracker._publishing:
            break
        await asyncio.sleep(0.02)
    sent = sorted(
        (event["user_id"], sorted(groups))
        for groups, event in bus_sent
        if event["type"] == "presence.changed"
    )
    assert sent == sorted(
        [
            (alice.id, sorted([user_group(bob.id), user_group(carol.id)])),
            (bob.id, [user_group(alice.id)]),
        ]
    )
    assert calls == ["presence_of", "co_member_ids_many"]  # one batch: two database calls
    await tracker.stop()
