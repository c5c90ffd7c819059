"""The channel layer: channels-redis's pub/sub layer, with its subscriptions sent in batches.

channels-redis 4.3 (pinned) sends one SUBSCRIBE (or UNSUBSCRIBE) per group, each under its
shard's lock, and the receive task wakes for each confirmation. Every handshake subscribes the
process to its user's group (and every end unsubscribes it): measured in the event loop (uvloop,
Redis on the host, 1,000 groups), 65-160 us of CPU per `group_add` one at a time, 18-30 us per
group sent 20 to a command. A reconnect storm does thousands of them.

Here a shard collects the changes asked for within SUBSCRIBE_LINGER_SECONDS of a subscription
(an unsubscription alone goes at once, with whatever joined it) and sends them as one
UNSUBSCRIBE and one SUBSCRIBE, under its lock, in the order of the batches; the latest ask for a
channel wins within a batch (subscribed then unsubscribed before the batch went: nothing is
sent). Each caller returns once its batch was sent, as channels-redis's own subscribe returns once
its command was sent; a failure reaches every caller of the batch. Everything else (naming,
sharding, the receive task, redis-py's re-subscription on reconnect) is channels-redis's.

The receive task reads each pub/sub reply as redis-py parses it, without a timeout: channels-redis
asks for the next message with `get_message(timeout=0.1)`, and redis-py then arms an asyncio
timeout for every read and builds a message dict (and awaits its observability hook) for every
message, ~3% of the event loop's work per direct message (issue 19). A message goes into the
channel queues as channels-redis's `_receive_message` puts it; every other reply (subscription
confirmations) still goes through redis-py's `handle_message`, which keeps its bookkeeping.
redis-py 8 speaks RESP3 by default, where a message is a push (hiredis's `PushNotification`, a
list): it is taken as a message all the same, and the pub/sub connection's push handler hands it
back as it is, where redis-py's default handler formats every message, its body included, into a
debug log line whether or not anything logs it (`_as_it_is`; issue 19, session 6: the shortcut
above had stopped being taken, and the two cost ~40% of a message's receive in
`bench/bus_hop_cost.py`).
Failures are handled as channels-redis does (logged on its logger, which the bus counts as a
reconnect, then retried a second later; redis-py reconnects and re-subscribes).

A loop's layer also delivers the bus's copies for its own groups to itself before publishing
them, and drops them when Redis hands them back (`deliver_here`, `echoed`).

Subclasses `RedisPubSubChannelLayer`, `RedisPubSubLoopLayer` and `RedisSingleShardConnection`
(their `_get_layer`, `_shards`, `subscribe`/`unsubscribe`, `_ensure_redis` and `_do_receiving`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

# channels-redis's own logger: its receive failures are counted from there (bus.transport).
layer_logger = logging.getLogger("channels_redis.pubsub")
MESSAGE = b"message"
SUBSCRIBE = b"subscribe"
CONFIRMATIONS = (SUBSCRIBE, b"unsubscribe")

# How long the first subscription change of a batch waits for others. Handshakes arrive
# milliseconds apart; a handshake waits this long once, before its session check.
SUBSCRIBE_LINGER_SECONDS = 0.005


class BatchingShard(RedisSingleShardConnection):
    def __init__(self, host, channel_layer) -> None:
        super().__init__(host, channel_layer)
        self._wanted: dict[str, bool] = {}  # channel -> subscribed (True) or not, latest ask
        self._sent: asyncio.Future | None = None  # resolved when the batch of `_wanted` is sent
        self._sender: asyncio.Task | None = None
        # A channel of this shard's pub/sub connection alone, subscribed with its first batch
        # and never dropped (redis-py subscribes it again on a reconnect, in the one command
        # with every other channel): while Redis counts a subscriber of it, this connection's
        # subscriptions are in place (`mark`).
        self.alive = _alive_name(channel_layer.prefix)
        # Channels whose latest SUBSCRIBE Redis has confirmed on the current connection, and the
        # commands sent per channel not confirmed yet.
        self._confirmed: set[str] = set()
        self._unconfirmed: dict[str, int] = {}
        self._resubscribe = None  # redis-py's own connect callback of the current pub/sub

    def _ensure_redis(self) -> None:
        fresh = self._pubsub is None
        super()._ensure_redis()
        # Set on the connection's parser at every connect (redis-py's PubSub.connect).
        self._pubsub.push_handler_func = _as_it_is
        if fresh:
            # redis-py registers it as the connection's connect callback (`execute_command`),
            # through a weak reference: a bound method.
            self._resubscribe = self._pubsub.on_connect
            self._pubsub.on_connect = self._reconnected

    async def _reconnected(self, connection) -> None:
        """A new connection (a reconnect) holds nothing until Redis confirms again, and gets an
        own channel of a new name, subscribed in the one command redis-py sends for every
        channel: a half-open old connection that Redis has not dropped yet (it can keep one
        until its TCP keepalive gives up) still counts in the old name, never in the new."""
        self._confirmed.clear()
        self._unconfirmed.clear()
        old, self.alive = self.alive, _alive_name(self.channel_layer.prefix)
        if old in self._subscribed_to:
            channels = self._pubsub.channels  # redis-py's: encoded names -> handlers
            channels.pop(old.encode(), None)
            channels[self.alive.encode()] = None
            self._subscribed_to.discard(old)
            self._subscribed_to.add(self.alive)
        await self._resubscribe(connection)

    def mark(self, channel: str) -> str:
        """The bus script's mark for a copy published to `channel` by this process, which
        subscribes to it: publish it only if another connection subscribes (`alive`, when Redis
        has confirmed this connection's subscription to `channel`: Redis then counts this
        connection in both channels or, once it is gone, in neither), else always ("0")."""
        return self.alive if channel in self._confirmed else "0"

    def _sent_command(self, channels: list[str]) -> None:
        for channel in channels:
            self._confirmed.discard(channel)
            self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1

    def _confirmation(self, kind: bytes, channel: bytes) -> None:
        """A (un)subscribe confirmation: the channel counts as confirmed once the last command
        sent for it is a SUBSCRIBE Redis has answered."""
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        left = self._unconfirmed.get(name, 0) - 1
        if left > 0:
            self._unconfirmed[name] = left
            return
        self._unconfirmed.pop(name, None)
        if kind == SUBSCRIBE:
            self._confirmed.add(name)
        else:
            self._confirmed.discard(name)

    async def subscribe(self, channel: str) -> None:
        await self._change(channel, True)

    async def unsubscribe(self, channel: str) -> None:
        await self._change(channel, False)

    async def _change(self, channel: str, subscribed: bool) -> None:
        loop = asyncio.get_running_loop()
        if self._sent is None:
            self._sent = loop.create_future()
        sent = self._sent
        self._wanted.pop(channel, None)
        self._wanted[channel] = subscribed
        if self._sender is None or self._sender.done():
            # A batch begun by a subscription waits for others (handshakes come apart); one
            # begun by an unsubscription does not: callers that end connections one after
            # another (a revocation) would wait for each.
            linger = SUBSCRIBE_LINGER_SECONDS if subscribed else 0
            self._sender = loop.create_task(self._send_batches(linger))
        await sent

    async def _send_batches(self, linger: float) -> None:
        await asyncio.sleep(linger)
        while self._wanted:
            wanted, sent = self._wanted, self._sent
            self._wanted, self._sent = {}, None
            try:
                async with self._lock:
                    drop = [c for c, on in wanted.items() if not on and c in self._subscribed_to]
                    add = [c for c, on in wanted.items() if on and c not in self._subscribed_to]
                    if drop or add:
                        self._ensure_redis()
                        self._ensure_receiver()
                    if drop:
                        self._sent_command(drop)
                        await self._pubsub.unsubscribe(*drop)
                        self._subscribed_to.difference_update(drop)
                    if add:
                        if self.alive not in self._subscribed_to:
                            add.insert(0, self.alive)
                        self._sent_command(add)
                        await self._pubsub.subscribe(*add)
                        self._subscribed_to.update(add)
            except BaseException as error:  # every caller of the batch hears of it
                if sent is not None and not sent.done():
                    sent.set_exception(error)
                    sent.exception()  # retrieved: a caller that went away leaves no warning
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            if sent is not None and not sent.done():
                sent.set_result(None)

    async def _do_receiving(self) -> None:
        while True:
            try:
                pubsub = self._pubsub
                if pubsub is not None and pubsub.subscribed:
                    # Blocks until a reply is there; one already buffered is parsed at once.
                    response = await pubsub.parse_response(block=True)
                    if isinstance(response, list) and len(response) == 3 and response[0] == MESSAGE:
                        self._put(response[1], response[2])
                    elif response is not None:
                        if isinstance(response, list) and len(response) == 3 and response[0] in CONFIRMATIONS:
                            self._confirmation(response[0], response[1])
                        self._receive_message(
                            await pubsub.handle_message(response, ignore_subscribe_messages=True)
                        )
                else:
                    await asyncio.sleep(0.1)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except BaseException:
                # The connection is gone (redis-py connects again on the next read): nothing
                # counts as confirmed until Redis confirms on the new one.
                self._confirmed.clear()
                self._unconfirmed.clear()
                layer_logger.exception("Unexpected exception in receive task")
                await asyncio.sleep(1)

    def _receive_message(self, message) -> None:
        data = message.get("data") if message is not None else None
        if isinstance(data, bytes) and message.get("type") == "message" and self.channel_layer.echoed(data):
            return
        super()._receive_message(message)

    def _put(self, name: bytes, data: bytes) -> None:
        """channels-redis's `_receive_message` for one message; this process's own copies,
        already delivered here (`BatchingLoopLayer.deliver_here`), are dropped."""
        layer = self.channel_layer
        if layer.echoed(data):
            return
        channel = name.decode()
        queue = layer.channels.get(channel)
        if queue is not None:
            queue.put_nowait(data)
            return
        for member in layer.groups.get(channel, ()):
            queue = layer.channels.get(member)
            if queue is not None:
                queue.put_nowait(data)


def _alive_name(prefix: str) -> str:
    return f"{prefix}__alive__{secrets.token_hex(8)}"


async def _as_it_is(response: list) -> list:
    """The pub/sub connection's push handler: a pushed reply (a message, a confirmation) is
    read as any other reply, by the receive task."""
    return response


# The key a payload delivered here carries first (`BatchingLoopLayer.deliver_here`).
ORIGIN = "origin"


class BatchingLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [BatchingShard(shard.host, self) for shard in self._shards]
        # This loop's layer's copies carry its origin as their first key; what a msgpack map
        # with that first entry holds after its one-byte header (channels-redis's serializer
        # packs a dict's keys in order, and a map of up to 15 entries has a one-byte header).
        self.origin = secrets.token_hex(8)
        self._echo = self.channel_layer.serialize({ORIGIN: self.origin})[1:]

    def echoed(self, data: bytes) -> bool:
        """Whether `data` is a copy this layer delivered here itself, come back from Redis."""
        return data.startswith(self._echo, 1)

    def deliver_here(
        self, channel: str, message: dict, *, wanted: bool = True, shard: BatchingShard | None = None
    ) -> tuple[bytes, str]:
        """Serialize `message` for publishing to the group channel `channel` and, when channels
        of this loop are in that group, put it in their queues now, as a message from Redis
        would be (issue 19: the bus's round trip through Redis was ~0.85 ms of a direct
        message's median latency with both users on one process). A copy published all the
        same (for another process, or before Redis confirmed this one's subscription) that comes
        back from Redis is dropped (`echoed`), so each channel gets it once and in the order
        this process published in. `wanted` False (nobody here wants it: the bus's
        `set_unwanted_here`): stamped all the same, so that its copy from Redis is dropped too,
        and not put anywhere. A payload that does not start with the origin (an encrypting
        serializer) is not delivered here: it arrives from Redis, as any other.

        Returns the payload and the bus script's mark for it: "0" (publish it), or the shard's
        `mark` for a copy this process has dealt with (publish it only for another subscriber:
        with a single process, nothing goes back and forth through Redis)."""
        members = self.groups.get(channel)
        if not members:
            return self.channel_layer.serialize(message), "0"
        payload = self.channel_layer.serialize({ORIGIN: self.origin, **message})
        if not self.echoed(payload):
            return self.channel_layer.serialize(message), "0"
        if wanted:
            for member in members:
                queue = self.channels.get(member)
                if queue is not None:
                    queue.put_nowait(payload)
        return payload, (shard or self._get_shard(channel)).mark(channel)


class BatchingPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis's pub/sub layer (settings.CHANNEL_LAYERS) with batched subscriptions."""

    def _get_layer(self) -> BatchingLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = BatchingLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer
