"""Event-loop CPU per bus message received: the channel layer's receive task and `receive`, as the
bridge reads the bus (issue 19). A thread publishes `--messages` messages to a group the layer
subscribes to (pipelines of 50), and the event loop's thread time (`time.thread_time`) is taken
from the first to the last `receive`.

    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/bus_receive_cost.py [--library]

`--library`: with channels-redis's own receive task instead of the product's (chatproject/bus/
layer.py), for comparison. Run both, alternating: the figures move with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
import uvloop  # noqa: E402
from channels_redis.pubsub import RedisSingleShardConnection  # noqa: E402

from chatproject.bus.layer import BatchingPubSubChannelLayer, BatchingShard  # noqa: E402


async def measure(url: str, messages: int) -> float:
    layer = BatchingPubSubChannelLayer(hosts=[url], prefix=f"rcost{os.getpid()}")
    channel = await layer.new_channel("proc.")
    await layer.group_add("g", channel)
    redis_channel = layer._get_layer()._get_group_channel_name("g")
    body = layer.serialize(
        {"type": "chat.event", "target": "g", "event": {"type": "probe", "text": "x" * 300}}
    )

    def publish() -> None:
        client = redis.Redis.from_url(url)
        for _ in range(0, messages, 50):
            pipe = client.pipeline(transaction=False)
            for _ in range(50):
                pipe.publish(redis_channel, body)
            pipe.execute()
            time.sleep(0.002)

    await asyncio.sleep(0.2)  # subscribed
    publisher = threading.Thread(target=publish)
    started = time.thread_time()
    publisher.start()
    for _ in range(messages - messages % 50):
        await layer.receive(channel)
    cpu = time.thread_time() - started
    publisher.join()
    await layer.flush()
    return cpu / (messages - messages % 50) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--library", action="store_true", help="channels-redis's own receive task")
    args = parser.parse_args()
    if args.library:
        BatchingShard._do_receiving = RedisSingleShardConnection._do_receiving
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    cost = uvloop.run(measure(url, args.messages))
    print(f"{'channels-redis' if args.library else 'product'} receive: {cost:.2f} us of loop CPU per message")


if __name__ == "__main__":
    main()
