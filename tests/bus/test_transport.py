"""The bus's publish path (chatproject/bus/transport.py) on real Redis: the script connection of
its own publishes through a Redis that lost the script, from one event loop after another, and
a Redis that never answers fails the call within its time limit instead of holding every later
flush behind it; `send` on the event loop itself spawns the flush without a thread-safe wake-up."""

import asyncio
import os
import threading
import uuid

from redis import asyncio as aioredis

from chatproject.bus import transport as bus
from chatproject.bus.transport import ScriptConnection

from ..conftest import require_redis

REDIS_URL = os.environ.get("REDIS_URL", "")


async def _heard(pubsub, count: int) -> list[bytes]:
    heard: list[bytes] = []
    for _ in range(400):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message is not None:
            heard.append(message["data"])
        if len(heard) >= count:
            break
    return heard


async def _published(script: ScriptConnection, bodies: list[bytes]) -> list[bytes]:
    channel = f"bustest-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        skipped = 0
        for body in bodies:
            skipped += await script.run([channel, body, "0"])
        assert skipped == 0
        return await _heard(pubsub, len(bodies))
    finally:
        await pubsub.aclose()
        await client.aclose()


def test_the_script_is_sent_again_when_redis_does_not_know_it(monkeypatch):
    """A Redis restarted or flushed since the script was loaded answers NOSCRIPT to its sha: the
    call sends the script itself and publishes all the same."""
    require_redis()
    monkeypatch.setattr(bus, "_PUBLISH_SHA", "0" * 40)  # a sha Redis has never seen
    script = ScriptConnection({"address": REDIS_URL})
    assert asyncio.run(_published(script, [b"one", b"two"])) == [b"one", b"two"]


def test_one_script_connection_publishes_from_one_event_loop_after_another():
    """A connection belongs to the loop that made it: a later loop (the next `async_to_sync`
    outside a server, a test's) gets a connection of its own."""
    require_redis()
    script = ScriptConnection({"address": REDIS_URL})
    assert asyncio.run(_published(script, [b"first loop"])) == [b"first loop"]
    assert asyncio.run(_published(script, [b"second loop"])) == [b"second loop"]


def test_a_redis_that_never_answers_fails_the_call_within_its_time_limit(monkeypatch):
    """redis-py's socket timeouts are off on this connection: the call's own limit ends it."""
    monkeypatch.setattr(bus, "PUBLISH_TIMEOUT_SECONDS", 0.2)

    async def run() -> BaseException | None:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # reads nothing, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            script = ScriptConnection({"address": f"redis://127.0.0.1:{port}/0"})
            call = asyncio.ensure_future(script.run(["channel", b"body", "0"]))
            done, _ = await asyncio.wait({call}, timeout=10)  # a bound for the test, not a measure
            if not done:
                call.cancel()
                return None
            return call.exception()
        finally:
            for writer in accepted:
                writer.close()
            server.close()

    error = asyncio.run(run())
    assert isinstance(error, TimeoutError)


def test_send_on_the_bound_loop_spawns_the_flush_without_a_thread_safe_wake_up(monkeypatch):
    """The send batch's loop driver publishes on the event loop: the flush is spawned there and
    then, not handed over through `call_soon_threadsafe` (the loop's self-pipe, once a batch).
    From another thread the hand-over stays thread-safe."""
    flushed: list[str] = []

    async def flush() -> None:
        flushed.append("flush")

    monkeypatch.setattr(bus, "flush", flush)
    monkeypatch.setattr(bus, "_queue", [])

    async def run() -> list[int]:
        loop = asyncio.get_running_loop()
        calls = [0]
        original = loop.call_soon_threadsafe

        def counted(*args, **kwargs):
            calls[0] += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counted
        bus.bind_loop(loop)
        try:
            bus._wake_pending = False
            bus.send(["g"], {"type": "probe"})
            await asyncio.sleep(0)
            on_loop = calls[0]
            bus._wake_pending = False
            thread = threading.Thread(target=bus.send, args=(["g"], {"type": "probe"}))
            thread.start()
            thread.join()
            for _ in range(100):
                if len(flushed) == 2:
                    break
                await asyncio.sleep(0.01)
            return [on_loop, calls[0], len(flushed)]
        finally:
            bus.bind_loop(None)
            bus._wake_pending = False
            del loop.call_soon_threadsafe

    assert asyncio.run(run()) == [0, 1, 2]


def test_on_the_bound_loop_what_is_sent_is_delivered_here_before_redis_answers(monkeypatch):
    """A flush on the bound loop delivers its copies to this process's channels as it takes
    them off the queue, in order, even while an earlier flush still waits for Redis; the
    copies published after are dropped when they come back, so each arrives once."""
    require_redis()
    from channels.layers import get_channel_layer

    published: list[int] = []
    original = bus._publish_pipelined
    monkeypatch.setattr(bus, "_unwanted_here", None)

    async def run() -> tuple[list[int], list[int], list]:
        gate = asyncio.Event()

        async def held(staged):
            await gate.wait()
            published.append(len(staged))
            return await original(staged)

        monkeypatch.setattr(bus, "_publish_pipelined", held)
        layer = get_channel_layer()
        group = f"bustest-{uuid.uuid4().hex[:8]}"
        channel = await layer.new_channel("proc.")
        await layer.group_add(group, channel)
        bus.bind_loop(asyncio.get_running_loop())
        try:
            got = []
            for n in range(3):
                bus.send([group], {"type": "probe", "n": n})
                message = await asyncio.wait_for(layer.receive(channel), 5)
                got.append(message["event"]["n"])
            waiting = list(published)  # nothing published yet: the first flush is held
            gate.set()
            for _ in range(200):
                if sum(published) == 3:
                    break
                await asyncio.sleep(0.01)
            more = []
            try:
                while True:
                    more.append(await asyncio.wait_for(layer.receive(channel), 0.3))
            except TimeoutError:
                pass
            return got, waiting, more
        finally:
            bus.bind_loop(None)
            await layer.group_discard(group, channel)

    got, waiting, more = asyncio.run(run())
    assert got == [0, 1, 2] and waiting == [] and sum(published) == 3 and more == []


def test_a_copy_staged_before_the_last_member_here_left_still_reaches_the_other_process(monkeypatch):
    """A copy delivered here is marked when it is staged; if the last local member of its group
    leaves (an UNSUBSCRIBE, sent at once) while the flush still waits behind an earlier one at
    Redis, Redis no longer counts this process in the group's channel: the mark is taken again
    under the shard's lock when the script goes, and the other process gets the copy."""
    require_redis()
    from channels.layers import get_channel_layer

    from chatproject.bus.layer import BatchingPubSubChannelLayer

    monkeypatch.setattr(bus, "_unwanted_here", None)
    original = bus._publish_pipelined

    async def confirmed(layer, group_channel: str) -> None:
        shard = layer._get_layer()._get_shard(group_channel)
        for _ in range(300):
            if shard.mark(group_channel) != "0":
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the subscription was never confirmed")

    async def run() -> tuple[int, int | None]:
        gate = asyncio.Event()

        async def held(staged):
            await gate.wait()
            return await original(staged)

        monkeypatch.setattr(bus, "_publish_pipelined", held)
        layer = get_channel_layer()
        elsewhere = BatchingPubSubChannelLayer(hosts=[REDIS_URL], prefix=layer._get_layer().prefix)
        group = f"bustest-{uuid.uuid4().hex[:8]}"
        group_channel = layer._get_layer()._get_group_channel_name(group)
        mine, theirs = await layer.new_channel("proc."), await elsewhere.new_channel("proc.")
        await layer.group_add(group, mine)
        await elsewhere.group_add(group, theirs)
        await confirmed(layer, group_channel)
        await confirmed(elsewhere, group_channel)
        bus.bind_loop(asyncio.get_running_loop())
        try:
            bus.send([group], {"type": "probe", "n": 1})
            here = (await asyncio.wait_for(layer.receive(mine), 5))["event"]["n"]
            await layer.group_discard(group, mine)  # the user's last connection here ends
            await asyncio.sleep(0.1)  # the UNSUBSCRIBE has reached Redis
            gate.set()
            try:
                there = (await asyncio.wait_for(elsewhere.receive(theirs), 3))["event"]["n"]
            except TimeoutError:
                there = None
            return here, there
        finally:
            bus.bind_loop(None)
            await elsewhere.flush()

    assert asyncio.run(run()) == (1, 1)
