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
