"""The channel layer with batched subscriptions (chatproject/bus/layer.py), on real Redis: what
is subscribed receives, what was unsubscribed does not, changes asked for together go as one
command, and a failure reaches every caller of its batch."""

import asyncio
import logging
import os
import uuid

import pytest
from redis import asyncio as aioredis

from chatproject.bus import layer as bus_layer
from chatproject.bus.layer import BatchingPubSubChannelLayer

from ..conftest import require_redis

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture
async def layers():
    require_redis()
    prefix = f"layertest{uuid.uuid4().hex[:8]}"
    subscriber = BatchingPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    publisher = BatchingPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    yield subscriber, publisher
    await subscriber.flush()
    await publisher.flush()


def _commands(layer) -> list[tuple[str, int]]:
    """Wrap the shard's redis-py pub/sub so the commands it sends are recorded."""
    shard = layer._get_layer()._shards[0]
    shard._ensure_redis()
    pubsub, sent = shard._pubsub, []
    for name in ("subscribe", "unsubscribe"):
        original = getattr(pubsub, name)

        async def record(*channels, _name=name, _original=original):
            sent.append((_name, len(channels)))
            return await _original(*channels)

        setattr(pubsub, name, record)
    return sent


async def _received(layer, channel: str, count: int) -> list[str]:
    out = []
    for _ in range(count):
        message = await asyncio.wait_for(layer.receive(channel), 10)
        out.append(message["text"])
    return out


async def test_groups_added_together_are_subscribed_with_one_command_and_receive(layers):
    subscriber, publisher = layers
    channel = await subscriber.new_channel("proc.")
    sent = _commands(subscriber)
    groups = [f"user.{i}" for i in range(50)]
    await asyncio.gather(*(subscriber.group_add(group, channel) for group in groups))
    assert sent == [("subscribe", 50)]
    for group in groups:
        await publisher.group_send(group, {"type": "m", "text": group})
    assert sorted(await _received(subscriber, channel, 50)) == sorted(groups)


async def test_a_group_added_and_discarded_in_one_batch_is_not_subscribed(layers):
    subscriber, publisher = layers
    channel = await subscriber.new_channel("proc.")
    sent = _commands(subscriber)
    await asyncio.gather(
        subscriber.group_add("gone", channel),
        subscriber.group_discard("gone", channel),
        subscriber.group_add("kept", channel),
    )
    assert sent == [("subscribe", 1)]
    await publisher.group_send("gone", {"type": "m", "text": "gone"})
    await publisher.group_send("kept", {"type": "m", "text": "kept"})
    assert await _received(subscriber, channel, 1) == ["kept"]
    with pytest.raises(TimeoutError):  # nothing else arrives
        await asyncio.wait_for(subscriber.receive(channel), 0.5)


async def test_a_group_discarded_then_added_again_stays_subscribed(layers):
    subscriber, publisher = layers
    channel = await subscriber.new_channel("proc.")
    await subscriber.group_add("again", channel)
    sent = _commands(subscriber)
    await subscriber.group_discard("again", channel)
    await subscriber.group_add("again", channel)
    await publisher.group_send("again", {"type": "m", "text": "still here"})
    assert await _received(subscriber, channel, 1) == ["still here"]
    before = len(sent)
    await asyncio.gather(subscriber.group_discard("again", channel), subscriber.group_add("again", channel))
    assert len(sent) == before  # the latest ask won: subscribed already, nothing sent
    await subscriber.group_discard("again", channel)
    assert sent[-1] == ("unsubscribe", 1)


async def test_a_failed_batch_reaches_every_caller_and_the_next_batch_goes(layers, monkeypatch):
    subscriber, publisher = layers
    channel = await subscriber.new_channel("proc.")
    shard = subscriber._get_layer()._shards[0]
    shard._ensure_redis()
    original = shard._pubsub.subscribe

    async def broken(*channels):
        raise ConnectionError("redis went away")

    shard._pubsub.subscribe = broken
    outcomes = await asyncio.gather(
        subscriber.group_add("a", channel), subscriber.group_add("b", channel), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
    shard._pubsub.subscribe = original
    await subscriber.group_add("c", channel)
    await publisher.group_send("c", {"type": "m", "text": "c"})
    assert await _received(subscriber, channel, 1) == ["c"]


async def test_an_unsubscription_on_its_own_goes_at_once(layers, monkeypatch):
    """Only a batch begun by a subscription waits for others: a revocation that ends its
    connections one after another does not wait that long for each."""
    subscriber, _publisher = layers
    channel = await subscriber.new_channel("proc.")
    await asyncio.gather(*(subscriber.group_add(f"v{i}", channel) for i in range(3)))
    monkeypatch.setattr(bus_layer, "SUBSCRIBE_LINGER_SECONDS", 60.0)
    sent = _commands(subscriber)
    for i in range(3):
        await asyncio.wait_for(subscriber.group_discard(f"v{i}", channel), 10)
    assert sent == [("unsubscribe", 1)] * 3


async def test_messages_are_read_as_they_come_not_through_a_timed_get_message(layers, monkeypatch):
    """The receive task parses each reply as it comes (no asyncio timeout per read, no message
    dict): redis-py's `get_message` is never called, and what redis-py keeps about subscriptions
    still follows the confirmations (unsubscribed, then subscribed again, it receives)."""
    from redis.asyncio.client import PubSub

    async def timed(*args, **kwargs):
        raise AssertionError("get_message called")

    monkeypatch.setattr(PubSub, "get_message", timed)
    subscriber, publisher = layers
    channel = await subscriber.new_channel("proc.")
    await subscriber.group_add("direct", channel)
    for n in range(20):
        await publisher.group_send("direct", {"type": "m", "text": str(n)})
    assert await _received(subscriber, channel, 20) == [str(n) for n in range(20)]
    pubsub = subscriber._get_layer()._shards[0]._pubsub
    group_channel = subscriber._get_layer()._get_group_channel_name("direct")
    await subscriber.group_discard("direct", channel)
    for _ in range(100):
        if group_channel.encode() not in pubsub.channels:
            break
        await asyncio.sleep(0.01)
    assert group_channel.encode() not in pubsub.channels  # the confirmation was handled
    await subscriber.group_add("direct", channel)
    await publisher.group_send("direct", {"type": "m", "text": "back"})
    assert await _received(subscriber, channel, 1) == ["back"]


async def test_messages_pushed_over_resp3_skip_redis_pys_message_dicts(layers, monkeypatch):
    """redis-py 8 speaks RESP3, where a message comes as a push (hiredis's `PushNotification`):
    it goes straight to the channel queues like a RESP2 reply, without `handle_message`'s dict;
    subscription confirmations still go through `handle_message`."""
    from redis.asyncio.client import PubSub

    handled: list[bytes] = []
    original = PubSub.handle_message

    async def counted(self, response, ignore_subscribe_messages=False):
        handled.append(response[0])
        return await original(self, response, ignore_subscribe_messages=ignore_subscribe_messages)

    monkeypatch.setattr(PubSub, "handle_message", counted)
    subscriber, publisher = layers
    channel = await subscriber.new_channel("proc.")
    await subscriber.group_add("direct", channel)
    for n in range(5):
        await publisher.group_send("direct", {"type": "m", "text": str(n)})
    assert await _received(subscriber, channel, 5) == [str(n) for n in range(5)]
    assert subscriber._get_layer()._shards[0]._pubsub.connection.protocol in (3, "3")  # the case
    assert b"message" not in handled and b"subscribe" in handled


async def test_no_message_body_is_formatted_into_a_log_line(layers, caplog):
    """redis-py's default push handler formats every pushed reply, the message's body included,
    into a debug line (built even when nothing logs it): the layer's pub/sub connection hands
    pushes back as they are, so no body reaches a log whatever the level."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="push_response")  # redis-py's, INFO by its own default
    subscriber, publisher = layers
    channel = await subscriber.new_channel("proc.")
    await subscriber.group_add("direct", channel)
    await publisher.group_send("direct", {"type": "m", "text": "secret-body-5071"})
    assert await _received(subscriber, channel, 1) == ["secret-body-5071"]
    assert not [r for r in caplog.records if "secret-body-5071" in r.getMessage()]


async def _publish_raw(layer, group: str, payload: bytes) -> None:
    """PUBLISH `payload` to `group`'s channel as the bus does (its script call), without the
    layer's `group_send`."""
    loop_layer = layer._get_layer()
    group_channel = loop_layer._get_group_channel_name(group)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.publish(group_channel, payload)
    finally:
        await client.aclose()


async def _quiet(layer, channel: str, seconds: float = 0.3) -> list[str]:
    """What else reaches `channel` within `seconds`."""
    more = []
    try:
        while True:
            message = await asyncio.wait_for(layer.receive(channel), seconds)
            more.append(message["text"])
    except TimeoutError:
        return more


async def _two_processes(layers) -> tuple:
    """Two processes' layers (this one, another), each with a channel in the group "direct"."""
    here, elsewhere = layers
    mine, theirs = await here.new_channel("proc."), await elsewhere.new_channel("proc.")
    await here.group_add("direct", mine)
    await elsewhere.group_add("direct", theirs)
    return here, elsewhere, mine, theirs


async def test_a_copy_delivered_here_reaches_this_process_once_and_every_other_process(layers):
    """`deliver_here` puts the message in the group's local channels at once; the same payload,
    published, reaches another process's layer, and comes back to this one from Redis only to
    be dropped: each channel gets it once, in the order it was delivered here."""
    here, elsewhere, mine, theirs = await _two_processes(layers)
    loop_layer = here._get_layer()
    group_channel = loop_layer._get_group_channel_name("direct")
    payloads = [loop_layer.deliver_here(group_channel, {"type": "m", "text": str(n)})[0] for n in range(3)]
    # In the queue before anything went to Redis.
    assert [loop_layer.channels[mine].get_nowait() for _ in range(3)] == payloads
    assert all(loop_layer.echoed(p) for p in payloads)
    for payload in payloads:
        await _publish_raw(here, "direct", payload)
    assert await _received(elsewhere, theirs, 3) == ["0", "1", "2"]
    await elsewhere.group_send("direct", {"type": "m", "text": "from elsewhere"})
    # The copies from Redis were dropped; what another process published still arrives.
    assert await _received(here, mine, 1) == ["from elsewhere"]
    assert await _quiet(here, mine) == []
    assert not elsewhere._get_layer().echoed(payloads[0])  # an origin of one loop's layer only


async def test_a_copy_nobody_here_wants_is_stamped_and_not_delivered_here(layers):
    """`wanted=False`: nothing is put in the local queues, and the published copy is dropped
    when it comes back, so this process never delivers it (the bus checked nobody here wants
    it); another process receives it."""
    here, elsewhere, mine, theirs = await _two_processes(layers)
    loop_layer = here._get_layer()
    group_channel = loop_layer._get_group_channel_name("direct")
    payload, _mark = loop_layer.deliver_here(group_channel, {"type": "m", "text": "quiet"}, wanted=False)
    assert loop_layer.channels[mine].empty()
    await _publish_raw(here, "direct", payload)
    assert await _received(elsewhere, theirs, 1) == ["quiet"]
    assert await _quiet(here, mine) == []


async def test_a_group_with_no_channel_here_is_only_serialized(layers):
    """No channel of this loop in the group: the payload is the plain serialized message (no
    origin), which this process receives from Redis like any other if it joins meanwhile."""
    here, _elsewhere = layers
    loop_layer = here._get_layer()
    group_channel = loop_layer._get_group_channel_name("nobody-here")
    message = {"type": "m", "text": "plain"}
    payload, mark = loop_layer.deliver_here(group_channel, message)
    assert payload == here.serialize(message) and not loop_layer.echoed(payload) and mark == "0"


async def test_an_encrypting_layer_delivers_nothing_here_and_receives_from_redis():
    """A payload that does not start with the origin (channels-redis's symmetric encryption)
    is not delivered here: it is published plain, and every channel gets it from Redis."""
    require_redis()
    prefix = f"layertest{uuid.uuid4().hex[:8]}"
    layer = BatchingPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix, symmetric_encryption_keys=["k" * 32])
    try:
        mine = await layer.new_channel("proc.")
        await layer.group_add("direct", mine)
        loop_layer = layer._get_layer()
        group_channel = loop_layer._get_group_channel_name("direct")
        payload, mark = loop_layer.deliver_here(group_channel, {"type": "m", "text": "sealed"})
        assert loop_layer.channels[mine].empty() and not loop_layer.echoed(payload) and mark == "0"
        await _publish_raw(layer, "direct", payload)
        assert await _received(layer, mine, 1) == ["sealed"]
    finally:
        await layer.flush()


async def _confirmed(shard, group_channel: str) -> str:
    for _ in range(300):
        if (mark := shard.mark(group_channel)) != "0":
            return mark
        await asyncio.sleep(0.01)
    raise AssertionError("the subscription was never confirmed")


async def test_a_copy_dealt_with_here_goes_to_redis_only_for_another_process(layers):
    """The mark of a copy this process has delivered to itself: until Redis confirms the
    subscription it is "0" (published); after, the bus script publishes it only while another
    connection subscribes. A pub/sub connection killed under the process counts in neither of
    its channels, so a copy marked before is published to the other process all the same; the
    process subscribes again, and the mark holds again once Redis confirms."""
    from chatproject.bus.transport import ScriptConnection

    here, elsewhere = layers
    mine = await here.new_channel("proc.")
    await here.group_add("direct", mine)
    loop_layer = here._get_layer()
    group_channel = loop_layer._get_group_channel_name("direct")
    shard = loop_layer._get_shard(group_channel)
    mark = await _confirmed(shard, group_channel)
    assert mark == shard.alive
    script = ScriptConnection({"address": REDIS_URL})
    assert await script.run([group_channel, b"only here", mark]) == 1  # left out
    theirs = await elsewhere.new_channel("proc.")
    await elsewhere.group_add("direct", theirs)
    await _confirmed(elsewhere._get_layer()._get_shard(group_channel), group_channel)
    payload, _ = loop_layer.deliver_here(group_channel, {"type": "m", "text": "both"})
    assert await script.run([group_channel, payload, mark]) == 0
    assert await _received(elsewhere, theirs, 1) == ["both"]
    # Kill this process's pub/sub connection; publish with the mark taken before.
    alive_before = shard.alive
    host, port = shard._pubsub.connection._writer.get_extra_info("sockname")[:2]
    address = f"{host}:{port}"
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.execute_command("CLIENT", "KILL", "ADDR", address)
    finally:
        await client.aclose()
    payload, _ = loop_layer.deliver_here(group_channel, {"type": "m", "text": "after the kill"})
    assert await script.run([group_channel, payload, mark]) == 0
    assert await _received(elsewhere, theirs, 1) == ["after the kill"]
    # Back: subscribed again, confirmed again, and receiving what another process publishes.
    for _ in range(500):
        if shard.alive != alive_before and shard.mark(group_channel) != "0":
            break
        await asyncio.sleep(0.01)
    # The new connection's own channel has a new name (a half-open old one keeps the old).
    assert shard.mark(group_channel) == shard.alive != alive_before
    await elsewhere.group_send("direct", {"type": "m", "text": "again"})
    # Each once: the two delivered here (their copies from Redis dropped), then the other's.
    assert await _received(here, mine, 3) == ["both", "after the kill", "again"]
    assert await script.run([group_channel, b"for them", shard.mark(group_channel)]) == 0
