"""Connection <-> bus: one channel-layer subscription per process, routed locally.

A design where every connection is its own channel-layer member costs one Redis delivery per
connection. Here the process owns one channel and subscribes it to a group only while at least
one local connection needs that group (reference counted). One bus message per process then
reaches every local connection it concerns through in-process routing (the sinks: Socket.IO
rooms, and the registry of /ws/ consumers), so delivery cost is per process, not per connection.
"""

import asyncio
import logging
from collections import Counter
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings
from redis import asyncio as aioredis
from redis import exceptions as redis_errors

from chatproject.bus import transport as bus
from chatproject.bus.groups import PROCESSES_GROUP
from chatproject.core.tasks import spawn
from chatproject.ops import metrics

logger = logging.getLogger(__name__)


class Sink(Protocol):
    async def deliver(self, target: str, event: dict[str, Any]) -> None: ...

    def wants(self, target: str, event: dict[str, Any]) -> bool:
        """Whether `deliver` of this event to `target` could reach (or reroute) a local
        connection. Asked on the event loop before the event is published (`unwanted_here`)
        and before each `deliver` (a sink that says no is not called)."""
        ...

    async def resync(self) -> None:
        """Tell every local connection that events may have been lost (the bus failed)."""
        ...


class _OutageLog(logging.Filter):
    """While the bus's Redis is unreachable, the channel layer's receive task, presence and
    publishing each fail every second or so. The first such failure of an outage is logged as
    one warning line without its traceback; the rest are counted (bus stats) and not logged."""

    def __init__(self) -> None:
        super().__init__()
        self.told = False

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, redis_errors.ConnectionError | redis_errors.TimeoutError | OSError):
            return True
        if self.told:
            return False
        self.told = True
        record.msg, record.args = f"{record.getMessage()}: bus unreachable ({type(error).__name__})", ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


outage_log = _OutageLog()
for _name in ("channels_redis.pubsub", "gateway.presence", "gateway.hub", "chatproject.bus.transport"):
    logging.getLogger(_name).addFilter(outage_log)

PROBE_SECONDS = 2.0  # how often the bus (Redis) is probed when it is Redis
# After the bus recovers, clients are told to resync this much later: the channel layer
# resubscribes about a second after Redis accepts connections again, and a sync read before
# that could miss events published in between.
RESYNC_SETTLE_SECONDS = 2.5


class Watch:
    """Whether the bus brought anything for some groups since the watch began (`heard`). A
    handshake subscribes to its user's group before its one session check and greeting read,
    and greets from that read only if nothing came for the group meanwhile (gateway.hub)."""

    __slots__ = ("groups", "heard")

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups
        self.heard = False


class Bridge:
    def __init__(self) -> None:
        self.channel: str | None = None
        self._refs: Counter[str] = Counter()
        self._sinks: list[Sink] = []
        self._watches: dict[str, set[Watch]] = {}  # group -> watches on it
        self._task: asyncio.Task | None = None
        self._probe: asyncio.Task | None = None
        self._start_lock = asyncio.Lock()
        self._sampler: asyncio.Task | None = None
        bus.on_health_change(self._health_changed)
        self.stats = {"received": 0, "dispatch_errors": 0, "subscribers": None}

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    async def ensure_started(self) -> None:
        """Create this process's channel and start the receive loop (once, lazily)."""
        if self._task is not None and not self._task.done():
            return
        async with self._start_lock:
            if self._task is not None and not self._task.done():
                return
            layer = get_channel_layer()
            self.channel = await layer.new_channel("chatproc.")
            bus.bind_loop(asyncio.get_running_loop())
            bus.set_unwanted_here(self.unwanted_here)
            self._task = asyncio.get_running_loop().create_task(self._receive_loop(layer))
            # Held for the process's life, outside the reference counts: its subscriber count
            # says how many processes' bus subscriptions are alive.
            await layer.group_add(PROCESSES_GROUP, self.channel)
            if settings.REDIS_URL and self._probe is None:
                self._probe = asyncio.get_running_loop().create_task(self._probe_loop(settings.REDIS_URL))
            # Groups subscribed before a restart of the loop (layer reconnect) are re-added.
            for group in list(self._refs):
                await layer.group_add(group, self.channel)
            logger.info("bus bridge started: channel=%s", self.channel)

    async def subscribe(self, groups: list[str]) -> None:
        """Hold a reference on each group; the first reference subscribes the process.

        Returns once the subscription is in place, so an event published after this returns
        reaches the process.
        """
        await self.ensure_started()
        layer = get_channel_layer()
        for group in groups:
            self._refs[group] += 1
            if self._refs[group] == 1:
                try:
                    await layer.group_add(group, self.channel)
                except BaseException:
                    # Not subscribed: drop the reference so the next holder tries again.
                    self._refs[group] -= 1
                    if self._refs[group] <= 0:
                        del self._refs[group]
                    raise

    async def unsubscribe(self, groups: list[str]) -> None:
        """Drop a reference on each group; the last one unsubscribes the process."""
        layer = get_channel_layer()
        for group in groups:
            if self._refs[group] <= 0:
                continue
            self._refs[group] -= 1
            if self._refs[group] == 0:
                del self._refs[group]
                if self.channel is not None:
                    await layer.group_discard(group, self.channel)

    def subscribed(self, group: str) -> bool:
        return self._refs[group] > 0

    def unwanted_here(self, group: str, event: dict[str, Any]) -> bool:
        """Whether this process subscribes to `group` and a copy of `event` to it would reach
        nobody here: no handshake watches the group (a new connection of its user, whose
        greeting read may predate the event) and no sink wants it. The bus then publishes the
        copy only if another process subscribes to the group (chatproject.bus.transport).

        The case it is for: the sender's own copy of a direct message, sent from the sender's
        only connection, which its protocol does not echo (issue 19: ~13% of the event loop's
        work per direct message went into receiving and rendering it for nobody)."""
        if self._refs[group] <= 0 or group in self._watches:
            return False
        try:
            return not any(getattr(sink, "wants", _always)(group, event) for sink in self._sinks)
        except Exception:  # published as before: a copy too many costs less than one lost
            logger.exception("bus copy check failed: target=%s type=%s", group, event.get("type"))
            return False

    def watch(self, groups: list[str]) -> Watch:
        """Start noting bus messages for `groups` (until `unwatch`): a message counts from the
        moment the bridge takes it off the bus, before any sink sees it, so whatever a sink
        could have delivered before a connection joined its rooms has been heard."""
        watch = Watch(groups)
        for group in groups:
            self._watches.setdefault(group, set()).add(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        for group in watch.groups:
            watches = self._watches.get(group)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[group]

    async def _receive_loop(self, layer) -> None:
        # channels-redis's pub/sub layer answers `receive` through `__getattr__`: a
        # functools.partial, a proxy coroutine and a look-up of this loop's own layer for every
        # message (2% of the event loop's samples for direct messages, issue 19). That per-loop
        # layer is made once per event loop and kept for the loop's life (channels-redis 4.3,
        # pinned): its `receive` is taken once, here, in the loop that runs this task.
        per_loop = getattr(layer, "_get_layer", None)
        receive = per_loop().receive if per_loop is not None else layer.receive
        while True:
            try:
                message = await receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                metrics.bus_reconnect()
                logger.exception("bus receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            self.stats["received"] += 1
            metrics.bus_received()
            if message.get("type") != bus.MESSAGE_TYPE:
                continue
            target, event = message.get("target"), message.get("event")
            if not isinstance(target, str) or not isinstance(event, dict):
                continue
            if self._watches:
                for watch in self._watches.get(target, ()):
                    watch.heard = True
            if not self.subscribed(target):
                # Subscription dropped while the message was in flight: nobody here wants it.
                continue
            for sink in self._sinks:
                try:
                    # A mount with no connection, or none of the user's: nothing to render there
                    # (7 mounts by default; a coroutine each for nothing, per bus message).
                    if getattr(sink, "wants", _always)(target, event):
                        await sink.deliver(target, event)
                except Exception:
                    self.stats["dispatch_errors"] += 1
                    metrics.bus_lost(1)
                    logger.exception("bus dispatch failed: target=%s type=%s", target, event.get("type"))

    async def _probe_loop(self, url: str) -> None:
        """PING the bus's Redis every PROBE_SECONDS: an outage is noticed even when nothing is
        published (a subscriber cannot tell, the layer reconnects quietly), and its end too."""
        client = aioredis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                try:
                    await client.ping()
                    bus.health_report(True)
                except Exception:
                    bus.health_report(False)
                await asyncio.sleep(PROBE_SECONDS)
        finally:
            await client.aclose()

    def _health_changed(self, healthy: bool) -> None:
        """The bus failed or recovered: every local connection is told to resync, at once when
        it failed (what was lost so far is in the database) and again once it is back."""
        if healthy:
            outage_log.told = False  # the next outage is logged again
        loop = bus.bound_loop()
        if loop is None:
            return
        delay = RESYNC_SETTLE_SECONDS if healthy else 0.0
        loop.call_soon_threadsafe(lambda: loop.call_later(delay, lambda: spawn(self._resync(), loop)))

    async def _resync(self) -> None:
        for watches in self._watches.values():  # events may have been lost: read again
            for watch in watches:
                watch.heard = True
        for sink in self._sinks:
            try:
                await sink.resync()
            except Exception:
                logger.exception("resync notification failed")

    def start_sampler(self) -> None:
        """Sample the bus's subscriber count now and every CHAT["BUS_SAMPLE_SECONDS"] (Redis
        only). Called at startup, after `ensure_started`."""
        if settings.REDIS_URL and (self._sampler is None or self._sampler.done()):
            self._sampler = asyncio.get_running_loop().create_task(self._sample_loop())

    async def sample_subscribers(self) -> int | None:
        count = await bus.subscriber_count(PROCESSES_GROUP)
        if count is not None:
            self.stats["subscribers"] = count
            metrics.bus_subscribers_set(count)
        return count

    async def _sample_loop(self) -> None:
        while True:
            try:
                await self.sample_subscribers()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("bus subscriber sample failed", exc_info=True)
            await asyncio.sleep(settings.CHAT["BUS_SAMPLE_SECONDS"])

    async def stop(self) -> None:
        for task in (self._sampler, self._probe):
            if task is not None:
                task.cancel()
        self._sampler = self._probe = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        bus.set_unwanted_here(None)
        bus.bind_loop(None)


def _always(target: str, event: dict[str, Any]) -> bool:
    return True


bridge = Bridge()
