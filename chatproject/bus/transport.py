"""The bus: channel-layer groups, reached from sync services and from the event loop.

Services run in worker threads; publishing from there must neither block the thread on Redis nor
reorder events. When this process runs an event loop with the bridge (a server process), `send`
appends to one FIFO queue and wakes the loop; a single flusher at a time takes everything queued
and publishes it in order, on Redis as one pipeline (one round trip for a whole batch of sends).
Copies for groups this process subscribes to are delivered to it as the flush takes them off the
queue, before Redis answers (`_stage`, `BatchingLoopLayer.deliver_here`).
Outside a server (management commands, the admin under a sync server, tests) it falls back to
publishing at once with `async_to_sync`.
"""

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import create_pool
from hiredis import pack_command
from redis import asyncio as aioredis
from redis.exceptions import NoScriptError

from chatproject.core.tasks import spawn
from chatproject.ops import metrics

logger = logging.getLogger(__name__)

# Bus message type: the channel-layer envelope carries the target group and the domain event.
MESSAGE_TYPE = "chat.event"

_loop: asyncio.AbstractEventLoop | None = None
_queue: list[tuple[str, dict[str, Any]]] = []
# On the bound loop: copies taken off `_queue` (and delivered here) that wait for their publish.
_staged: list[tuple[Any, ...]] = []
_queue_lock = threading.Lock()
_wake_pending = False
_flush_lock: asyncio.Lock | None = None
_publishers: dict[str, aioredis.Redis] = {}
# "skipped": copies not published because no other process subscribed to their group (the
# process had delivered them to itself, or nobody in it wanted them).
stats = {"published": 0, "publish_errors": 0, "flushes": 0, "skipped": 0}
# Set by the gateway's bridge while it runs in this process's event loop (`set_unwanted_here`).
_unwanted_here: Callable[[str, dict[str, Any]], bool] | None = None


class _LayerReconnects(logging.Filter):
    """Counts the receive failures of channels-redis's pub/sub shards (each is followed by a
    retry, on which redis-py reconnects and re-subscribes). channels-redis 4.3 reports them only
    as this log line; a filter on its logger counts them without patching the library."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Unexpected exception in receive task":
            metrics.bus_reconnect()
        return True


def count_layer_reconnects() -> None:
    """Count channels-redis pub/sub reconnects as chat_bus_reconnects (once per process)."""
    layer_logger = logging.getLogger("channels_redis.pubsub")
    if not any(isinstance(f, _LayerReconnects) for f in layer_logger.filters):
        layer_logger.addFilter(_LayerReconnects())


def bind_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by the bridge when it starts (and stops) in this process's event loop."""
    global _loop, _flush_lock
    _loop = loop
    _flush_lock = asyncio.Lock() if loop is not None else None
    _publishers.clear()
    with _queue_lock:
        dropped = len(_staged)
        _staged.clear()
    if dropped:  # taken off the queue (and delivered here), never published
        stats["publish_errors"] += dropped
        metrics.bus_lost(dropped)
        logger.warning("bus loop rebound: %d copies not published", dropped)
    _scripts.clear()
    _host_keys.clear()


def set_unwanted_here(check: Callable[[str, dict[str, Any]], bool] | None) -> None:
    """Called by the bridge: `check(group, event)` says, on the event loop, that this process
    subscribes to `group` and has nobody a copy of `event` would reach (the sender's own copy of
    a message sent from its only connection). Such a copy is published only if Redis counts
    another subscriber of the group at that moment (`_PUBLISH_LUA`)."""
    global _unwanted_here
    _unwanted_here = check


def bound_loop() -> asyncio.AbstractEventLoop | None:
    """The server's event loop, once the bridge started in it."""
    return _loop


def envelope(group: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"type": MESSAGE_TYPE, "target": group, "event": event}


def send(groups: list[str], event: dict[str, Any]) -> None:
    """Publish `event` to each group. Called on commit, from any thread."""
    global _wake_pending
    loop = _loop
    if loop is None or not loop.is_running():
        async_to_sync(_publish)([(group, envelope(group, event)) for group in groups])
        return
    with _queue_lock:
        _queue.extend((group, envelope(group, event)) for group in groups)
        wake, _wake_pending = not _wake_pending, True
    if wake:
        if asyncio._get_running_loop() is loop:
            # On the loop itself (the send batch's loop driver): no wake-up through the loop's
            # self-pipe (a write, then a read and a callback on its next turn) for each batch.
            spawn(flush(), loop)
        else:
            loop.call_soon_threadsafe(lambda: spawn(flush(), loop))


async def send_async(groups: list[str], event: dict[str, Any]) -> None:
    """Publish from the event loop (state that is never stored: typing, presence)."""
    send(groups, event)
    if _loop is not None and _loop.is_running():
        await flush()


async def flush() -> None:
    """Publish everything queued so far, in order. One flusher at a time keeps the order.

    On the bound loop, what is queued is first taken off the queue and delivered to this
    process's own subscribers (`_stage`), at once and in order, whatever flush is still waiting
    for Redis; then it is published with whatever else waits."""
    global _wake_pending
    with _queue_lock:
        batch = _queue[:]
        _queue.clear()
        _wake_pending = False
    if batch:
        try:
            ready = _stage(batch, here=_loop is not None and asyncio.get_running_loop() is _loop)
        except Exception as exc:
            _lost(len(batch), exc)
        else:
            with _queue_lock:
                _staged.extend(ready)
    lock = _flush_lock or asyncio.Lock()
    async with lock:
        with _queue_lock:
            staged = _staged[:]
            _staged.clear()
        if staged:
            stats["flushes"] += 1
            await _publish_staged(staged)


async def _publish(batch: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish `batch` from a loop the bridge does not run in (outside a server)."""
    try:
        staged = _stage(batch, here=False)
    except Exception as exc:
        _lost(len(batch), exc)
        return
    await _publish_staged(staged)


def _stage(batch: list[tuple[str, dict[str, Any]]], *, here: bool) -> list[tuple[Any, ...]]:
    """Each (group, envelope) of `batch` made ready to publish: on channels-redis's pub/sub layer
    (shard, group channel, payload, mark: `_PUBLISH_LUA`), anywhere else as it is. With `here`
    (on the bound loop), copies for groups this process subscribes to are delivered to it now
    (`BatchingLoopLayer.deliver_here`), except the `_unwanted_here` ones, and both are marked
    to go to Redis only for another process."""
    layer = get_channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        return batch
    loop_layer = layer._get_layer()
    unwanted = _unwanted_here if here else None
    deliver = getattr(loop_layer, "deliver_here", None) if here else None
    serialize = layer.serialize
    staged: list[tuple[Any, ...]] = []
    for group, message in batch:
        try:
            channel = loop_layer._get_group_channel_name(group)
            shard = loop_layer._get_shard(channel)
            alone = unwanted is not None and unwanted(group, message["event"])
            if deliver is None:
                staged.append((shard, channel, serialize(message), "0"))
            else:
                staged.append((shard, channel, *deliver(channel, message, wanted=not alone, shard=shard)))
        except Exception as exc:
            # That copy only: the others, some delivered here already, go on.
            _lost(1, exc)
    return staged


async def _publish_staged(staged: list[tuple[Any, ...]]) -> None:
    try:
        skipped = 0
        if staged and len(staged[0]) == 4:
            skipped = await _publish_pipelined(staged)
        else:
            layer = get_channel_layer()
            for group, message in staged:
                await layer.group_send(group, message)
        stats["published"] += len(staged) - skipped
        stats["skipped"] += skipped
        metrics.bus_published(len(staged) - skipped)
        health_report(True)
    except Exception as exc:
        _lost(len(staged), exc)


def _lost(count: int, exc: Exception) -> None:
    # The database already holds the data; clients recover it through history and the
    # resync the gateway pushes when the bus comes back (health_report). Count, and log one
    # warning per outage (ids and counts only, never bodies), not a traceback per batch.
    stats["publish_errors"] += count
    metrics.bus_publish_error(count)
    metrics.bus_lost(count)
    if _healthy:
        logger.warning(
            "bus publish failed: %d messages lost (%s); counting until it recovers",
            count,
            type(exc).__name__,
        )
    health_report(False)


# --- bus health -----------------------------------------------------------------------------
# Publishing and the gateway's Redis probe report here; listeners (the gateway bridge) hear of
# each change between healthy and failing, so that clients can be told to resync.

_healthy = True
_health_listeners: list[Callable[[bool], None]] = []


def on_health_change(listener: Callable[[bool], None]) -> None:
    _health_listeners.append(listener)


def health_report(healthy: bool) -> None:
    global _healthy
    if healthy == _healthy:
        return
    _healthy = healthy
    if healthy:
        logger.warning("bus recovered: %d publish errors so far", stats["publish_errors"])
    for listener in list(_health_listeners):
        listener(healthy)


def is_healthy() -> bool:
    return _healthy


async def subscriber_count(group: str) -> int | None:
    """How many Redis connections are subscribed to `group` (PUBSUB NUMSUB of its channel), or
    None when the bus is not Redis pub/sub. One command on the shard that holds the group."""
    layer = get_channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    loop_layer = layer._get_layer()
    channel = loop_layer._get_group_channel_name(group)
    host = loop_layer._get_shard(channel).host
    key = repr(sorted(host.items())) if isinstance(host, dict) else str(host)
    if key not in _publishers:
        _publishers[key] = aioredis.Redis(connection_pool=create_pool(host))
    counts = await _publishers[key].pubsub_numsub(channel)
    return int(counts[0][1]) if counts else 0


# PUBLISH each ARGV triple (channel, message, mark) in order: a batch of sends is one command to
# Redis instead of one PUBLISH per message and user group, each packed, sent and parsed by redis-py
# in the event loop (~35 µs per direct message for its two groups, in-process: issue 19). Mark
# "0": published. Any other mark names the publishing process's own channel on that Redis
# (`BatchingShard.alive`) for a copy the process has already dealt with (delivered to itself, or
# wanted by nobody there): it is published only when the channel has a subscriber besides that
# process, counted in the same atomic step as the PUBLISH would be delivered. The process counts
# in the copy's channel exactly when it counts in its own (its subscription to the copy's channel
# is confirmed on the connection that holds its own channel): so a copy is left out only when no
# other process subscribes. Returns how many were left out.
_PUBLISH_LUA = """
local skipped = 0
for i = 1, #ARGV, 3 do
  local mark = ARGV[i + 2]
  if mark == '0' or redis.call('PUBSUB', 'NUMSUB', ARGV[i])[2] > redis.call('PUBSUB', 'NUMSUB', mark)[2] then
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  else
    skipped = skipped + 1
  end
end
return skipped
"""
# Messages per script call: Redis runs a script without serving anyone else, so a large flush is
# a few short scripts rather than one long one.
PUBLISH_CHUNK = 500
_scripts: dict[str, "ScriptConnection"] = {}  # host key -> its connection
_host_keys: dict[Any, str] = {}  # the bound loop's shards -> their hosts' keys


async def _publish_pipelined(staged: list[tuple[Any, str, bytes, str]]) -> int:
    """PUBLISH the staged copies (`_stage`: the layer's own group channels, serialised by the
    layer) so every process's layer receives them as group messages, in order, with one script
    call per Redis shard and PUBLISH_CHUNK messages. Returns how many copies were left out
    (`set_unwanted_here`).

    Uses the layer's naming and sharding (channels_redis 4.3, pinned) instead of one
    `group_send` per message, which waits for a round trip under a per-shard lock each time.
    """
    bound = _loop is not None and asyncio.get_running_loop() is _loop
    by_shard: dict[Any, list[tuple[str, bytes, str]]] = {}  # the layer's shards, one per Redis host
    for shard, channel, payload, mark in staged:
        copies = by_shard.get(shard)
        if copies is None:
            copies = by_shard[shard] = []
        copies.append((channel, payload, mark))
    by_host: dict[str, list[tuple[Any, list[tuple[str, bytes, str]]]]] = {}
    for shard, copies in by_shard.items():  # a key per host, not per message (a sorted repr)
        key = _host_keys.get(shard) if bound else None
        if key is None:
            host = shard.host
            key = repr(sorted(host.items())) if isinstance(host, dict) else str(host)
            if key not in _scripts:
                _scripts[key] = ScriptConnection(host)
            if bound:  # the bound loop's shards, kept until `bind_loop` (the repr: 2% of a flush)
                _host_keys[shard] = key
        by_host.setdefault(key, []).append((shard, copies))
    skipped = 0
    for key, shards in by_host.items():
        script = _scripts[key]
        async with contextlib.AsyncExitStack() as held:
            # A copy this process dealt with was marked when it was staged; its channel may have
            # been unsubscribed since (the last local member left while an earlier flush was at
            # Redis), and Redis would then not count this process in it. Under the shard's lock
            # no (un)subscription goes out until the script has run, and the mark is taken
            # again: "0" (published) for a channel no longer confirmed, or off the bound loop.
            for shard, copies in shards:
                if any(mark != "0" for _channel, _payload, mark in copies):
                    await held.enter_async_context(shard._lock)
            args: list[bytes | str] = []
            for shard, copies in shards:
                remark = getattr(shard, "mark", None) if bound else None
                for channel, payload, mark in copies:
                    if mark != "0":
                        mark = remark(channel) if remark is not None else "0"
                    args += (channel, payload, mark)
            for start in range(0, len(args), 3 * PUBLISH_CHUNK):
                skipped += await script.run(args[start : start + 3 * PUBLISH_CHUNK])
    return skipped


# How long one script call to a Redis host may take, connecting included, before the flush fails
# (its batch counted lost): redis-py's default socket timeout, which bounded each of its steps.
PUBLISH_TIMEOUT_SECONDS = 5.0
_PUBLISH_SHA = hashlib.sha1(_PUBLISH_LUA.encode()).hexdigest()


class ScriptConnection:
    """The bus's own connection to one Redis host for `_PUBLISH_LUA`: one call at a time (the
    flushes are serialised by `_flush_lock`), packed by hiredis, written and read on a redis-py
    connection of its own under one timer per call.

    At a low rate each send batch is a flush of its own, and redis-py's client path cost more
    than the rest of the flush: a task and a timer for each write (`wait_for` of the socket
    timeout), a timer for each read, a pool checkout, a retry wrapper and its observability
    hooks, the Python packer (issue 19, session 6: `bench/bus_hop_cost.py`). Failures are as
    they were with the client over a pool made without a retry policy (channels-redis's
    `create_pool`): the call fails, redis-py drops the connection, and the next call connects
    again. NOSCRIPT (a Redis restarted or flushed since the script was loaded) sends the script
    itself, which loads it again."""

    __slots__ = ("_connection", "_loop", "_pool")

    def __init__(self, host: dict[str, Any]) -> None:
        # No per-step timeouts: `run` bounds the whole call (connect, write, read) with one.
        self._pool = create_pool({**host, "socket_timeout": None, "socket_connect_timeout": None})
        self._connection: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, args: list[bytes | str]) -> int:
        """The script over `args` (triples of channel, message, alone); how many it skipped."""
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            loop, connection = asyncio.get_running_loop(), self._connection
            if self._loop is not loop:  # a connection belongs to the loop it was made in
                connection = self._pool.make_connection()
                self._connection, self._loop = connection, loop
            try:
                return int(await _call(connection, b"EVALSHA", _PUBLISH_SHA, args))
            except NoScriptError:
                return int(await _call(connection, b"EVAL", _PUBLISH_LUA, args))


async def _call(connection: Any, command: bytes, script: str, args: list[bytes | str]) -> Any:
    # Connects first when not connected (redis-py disconnects it on any failure). The caller's
    # own reference: outside a server, another thread's loop may have replaced the attribute.
    await connection.send_packed_command(pack_command((command, script, 0, *args)), check_health=False)
    return await connection.read_response()
