"""The bridge's receive loop on the configured bus (Redis pub/sub when REDIS_URL is set, as in
production): every bus message of a subscribed group reaches the sinks, in order, and again
after the bridge stopped and started in another event loop (its per-loop receive is taken when
the loop starts)."""

import asyncio
import os

import pytest
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

from chatproject.bus import transport as bus
from gateway.bridge import bridge


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[str, int]] = []

    async def deliver(self, target: str, event: dict) -> None:
        self.got.append((target, event["n"]))

    async def resync(self) -> None:
        pass


async def _round(sink: Sink, group: str, first: int, count: int) -> None:
    await bridge.subscribe([group])
    try:
        for n in range(first, first + count):
            await bus.send_async([group], {"type": "probe", "n": n})
        for _ in range(500):
            if len(sink.got) >= first + count:
                break
            await asyncio.sleep(0.01)
    finally:
        await bridge.unsubscribe([group])


@pytest.fixture
def sink():
    sink = Sink()
    bridge.add_sink(sink)
    yield sink
    bridge._sinks.remove(sink)


def test_bus_messages_reach_the_sinks_in_order_across_a_restart_in_another_loop(sink):
    group = "bridge-probe"
    if os.environ.get("REDIS_URL"):
        assert isinstance(get_channel_layer(), RedisPubSubChannelLayer)

    async def one_loop(first: int) -> None:
        try:
            await _round(sink, group, first, 50)
        finally:
            await bridge.stop()
            await get_channel_layer().flush()

    asyncio.run(one_loop(0))
    asyncio.run(one_loop(50))
    assert sink.got == [(group, n) for n in range(100)]


class Picky(Sink):
    """A sink that wants no event marked `quiet` (as a hub wants no copy of a message for the
    sender's only connection, which sent it)."""

    def wants(self, target: str, event: dict) -> bool:
        return not event.get("quiet")


async def _until(sink: Sink, n: int) -> None:
    for _ in range(500):
        if any(got == n for _, got in sink.got):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"event {n} never arrived")


def test_a_copy_nobody_here_wants_is_published_only_for_another_subscriber():
    """Nothing lost: the copy goes out whenever Redis counts another subscriber of the group
    (another process) or a handshake here watches it; else it is not published at all. A sink
    that wants a bus message is handed it; one that does not is not called."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("the bus is Redis pub/sub only with REDIS_URL")
    sink = Picky()
    others, bridge._sinks = bridge._sinks, []  # the hubs of mounts other tests made
    bridge.add_sink(sink)
    group = "bridge-unwanted"

    async def received(count: int) -> None:
        for _ in range(500):
            if bridge.stats["received"] >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the bridge received {bridge.stats['received']} of {count}")

    async def run() -> list:
        from redis import asyncio as aioredis

        other = aioredis.Redis.from_url(os.environ["REDIS_URL"]).pubsub()
        skipped = bus.stats["skipped"]
        await bridge.subscribe([group])
        try:
            # Left out only once Redis has confirmed this process's subscription (until then
            # every copy is published, and comes back only to be dropped).
            loop_layer = get_channel_layer()._get_layer()
            shard = loop_layer._get_shard(loop_layer._get_group_channel_name(group))
            for _ in range(300):
                if shard.mark(loop_layer._get_group_channel_name(group)) != "0":
                    break
                await asyncio.sleep(0.01)
            got = bridge.stats["received"]
            await bus.send_async([group], {"type": "probe", "n": 0, "quiet": True})
            await bus.send_async([group], {"type": "probe", "n": 1})
            await _until(sink, 1)  # in order: 0 would have come first
            await received(got + 1)
            # Both left out: nobody else subscribes (n=1 was delivered here, without Redis).
            assert bus.stats["skipped"] == skipped + 2
            watch = bridge.watch([group])  # a handshake of the group's user in progress here
            await bus.send_async([group], {"type": "probe", "n": 2, "quiet": True})
            await received(got + 2)
            assert watch.heard
            bridge.unwatch(watch)
            channel = get_channel_layer()._get_layer()._get_group_channel_name(group)
            await other.subscribe(channel)  # another process subscribes to the group
            await bus.send_async([group], {"type": "probe", "n": 3, "quiet": True})
            await bus.send_async([group], {"type": "probe", "n": 4})
            await _until(sink, 4)
            # n=3 went out for the other subscriber only: this process's copy of what it
            # publishes is the one it delivers to itself (none, for a copy nobody here wants).
            await asyncio.sleep(0.2)
            assert bridge.stats["received"] == got + 3 and bus.stats["skipped"] == skipped + 3
            heard = []
            for _ in range(200):
                message = await other.get_message(ignore_subscribe_messages=True, timeout=0.05)
                if message is not None:
                    heard.append(get_channel_layer().deserialize(message["data"])["event"]["n"])
                if 4 in heard:
                    break
            return heard
        finally:
            await other.aclose()
            await bridge.unsubscribe([group])
            await bridge.stop()
            await get_channel_layer().flush()

    try:
        heard = asyncio.run(run())
    finally:
        bridge._sinks = others
    assert sink.got == [(group, 1), (group, 4)]  # the quiet ones arrived, and were not handed over
    assert heard == [3, 4]
