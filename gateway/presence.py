"""Presence: who is connected, on how many devices, in the foreground or the background.

Where the state lives:
- every process knows its own connections and each one's state (`PresenceTracker.local`);
- the view shared by all processes is a `PresenceStore`: Redis when REDIS_URL is set, a dict in
  this process otherwise (then there is only one process);
- `User.last_seen_at` in the database, written when a user's last connection on a process ends,
  every few minutes while connected, and for the users of a process that died. Never per event.

Redis layout (`{p}` is the channel layer's prefix, so test runs and deployments stay apart):
  {p}:presence:u:{user}     hash   "{proc}/{conn}" -> "{state}:{expires_ms}", one field per connection
  {p}:presence:procs        zset   proc -> when it counts as dead (last heartbeat + its TTL, ms)
  {p}:presence:beats        hash   proc -> its last heartbeat (ms): the last-seen time of its users
  {p}:presence:p:{proc}     set    users with a connection on proc (what to clean up if it dies)
  {p}:presence:pub:{user}   string the state last published for the user (one publisher wins)
  {p}:presence:reap:{proc}  string lock: one live process cleans up after a dead one

Expiry: every PRESENCE_HEARTBEAT_SECONDS a process rewrites its own fields with
expires = now + PRESENCE_TTL_SECONDS, and its deadline in `procs`. Readers ignore expired
fields, so a process that dies stops counting TTL seconds after its last heartbeat, whatever
else happens. At their next heartbeat, live processes see its deadline passed; one takes the
reap lock, deletes its fields, records the users' last-seen time and publishes their offline
transitions. Each process writes its own TTL into its fields and its deadline, so processes
with different settings (a rolling deploy) never reap each other early.
Expiry compares wall clocks of different hosts: keep them in sync (NTP) and the TTL well above
the skew.

A user's state is the best of their live connections: "foreground" if any device is, else
"background" if any is connected, else "offline". Changes are debounced per user
(PRESENCE_DEBOUNCE_SECONDS: a reconnect or a tab switch inside that window publishes nothing),
and published as `presence.changed` to the user groups of the users who share a conversation
with that user, found with one query. A user who hides their presence is "offline", without a
last-seen time, to everyone else, and nothing about them is ever published.
"""

import asyncio
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from accounts import events as account_events
from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.models import User
from chatproject.bus import publish_now
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from chatproject.core.timefmt import iso_ms
from chatproject.ops import metrics
from messaging import selectors as msg_selectors

from .connection import Connection
from .sync import call

logger = logging.getLogger(__name__)

FOREGROUND = "foreground"
BACKGROUND = "background"
OFFLINE = "offline"
DEVICE_STATES = (FOREGROUND, BACKGROUND)

# How often connected users' last-seen time is written (a fallback for a process that dies
# without Redis, where nobody else could record it).
LAST_SEEN_EVERY_SECONDS = 120
# The last published state only dedupes publishers; after this long without a change the next
# change is published again, which is harmless.
PUBLISHED_KEEP_MS = 24 * 3600 * 1000
# The heartbeat's refresh of one entry per connection, server-side: KEYS the users' hashes,
# ARGV the TTL (ms) then a field and a value per key. The two PEXPIREs let a user's hash live at
# least TTL more and never shorten a longer expiry another process set (NX sets one on a new key,
# GT only ever extends it).
_REFRESH_LUA = """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, ARGV[2 * i], ARGV[2 * i + 1])
  redis.call('PEXPIRE', key, ttl, 'NX')
  redis.call('PEXPIRE', key, ttl, 'GT')
end
return #KEYS
"""
# Entries per script call: Redis runs a script without serving anyone else, so a heartbeat of
# 10,000 connections is 20 short scripts rather than one long one.
HEARTBEAT_CHUNK = 500
# Connections' entries written and dropped (`RedisStore.put`, `drop`), in the order they were
# asked for, as one script call per batch: KEYS[1] this process's user set, then a user's hash
# per entry; ARGV[1] the TTL (ms), then four values per entry: "p" (put), "d" (drop) or "l"
# (drop the user's last local entry), the user id, the field, the value. The expiry as above.
_WRITE_LUA = """
local ttl = ARGV[1]
for i = 2, #KEYS do
  local a = (i - 2) * 4 + 2
  local op, key = ARGV[a], KEYS[i]
  if op == 'p' then
    redis.call('HSET', key, ARGV[a + 2], ARGV[a + 3])
    redis.call('PEXPIRE', key, ttl, 'NX')
    redis.call('PEXPIRE', key, ttl, 'GT')
    redis.call('SADD', KEYS[1], ARGV[a + 1])
  else
    redis.call('HDEL', key, ARGV[a + 2])
    if op == 'l' then
      redis.call('SREM', KEYS[1], ARGV[a + 1])
    end
  end
end
return #KEYS - 1
"""
# Debounced changes are published in batches at most this often: a change waits at least
# PRESENCE_DEBOUNCE_SECONDS and at most this much longer, and everything due by then goes in
# one batch (at 100 handshakes/s, ~25 users a batch instead of 25 publishes).
PUBLISH_EVERY_SECONDS = 0.25
BATCH_SLACK_SECONDS = 0.05
# How long a batch begun by a connection's entry waits for others to join it. A script call
# costs the event loop 88-103 us for one entry and 10-11 us per entry for 100 (bench: one store,
# Redis on the same host); handshakes arrive milliseconds apart, so without the wait nearly every
# handshake paid a call of its own (1.3 calls per handshake and close, 100 in flight). The entry
# is written once the client was greeted; its first event waits for it (a client's packets are
# handled in order), which is small beside a handshake, and beside the publish debounce
# (PRESENCE_DEBOUNCE_SECONDS) that reads the entries.
WRITE_LINGER_SECONDS = 0.02


def aggregate(states: list[str]) -> str:
    """The state of a user from the states of their live connections."""
    if FOREGROUND in states:
        return FOREGROUND
    return BACKGROUND if states else OFFLINE


def _now_ms() -> int:
    return int(time.time() * 1000)


class PresenceStore(Protocol):
    """Where connection states are shared. Writes run in the event loop; `states` is sync, so
    REST views and selectors running in the database thread can read it too."""

    async def put(self, user_id: str, key: str, state: str) -> None: ...

    async def drop(self, user_id: str, key: str, *, last_local: bool) -> None: ...

    async def heartbeat(self, entries: list[tuple[str, str, str]]) -> bool:
        """Refresh this process's (user, key, state) entries. True when the process was not
        registered (first beat, or reaped after a stall): its users must be recomputed."""
        ...

    async def reap(self) -> dict[str, datetime]:
        """Remove the entries of dead processes: their users -> when that process last beat."""
        ...

    async def swap_published(self, user_id: str, state: str) -> str:
        """Record `state` as published; return the previous one (offline if none)."""
        ...

    async def swap_published_many(self, states: list[tuple[str, str]]) -> list[str]:
        """`swap_published` for each (user, state), in one round trip."""
        ...

    def states(self, user_ids: list[str]) -> dict[str, list[str]]:
        """The states of each user's live connections."""
        ...


class MemoryStore:
    """One process, no Redis: a dict. Nothing can outlive the process, so nothing expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # `states` runs in the database thread
        self._entries: dict[str, dict[str, str]] = defaultdict(dict)
        self._published: dict[str, str] = {}

    async def put(self, user_id: str, key: str, state: str) -> None:
        with self._lock:
            self._entries[user_id][key] = state

    async def drop(self, user_id: str, key: str, *, last_local: bool) -> None:
        with self._lock:
            entries = self._entries.get(user_id)
            if entries is not None:
                entries.pop(key, None)
                if not entries:
                    del self._entries[user_id]

    async def heartbeat(self, entries: list[tuple[str, str, str]]) -> bool:
        return False

    async def reap(self) -> dict[str, datetime]:
        return {}

    async def swap_published(self, user_id: str, state: str) -> str:
        with self._lock:
            previous = self._published.get(user_id, OFFLINE)
            self._published[user_id] = state
        return previous

    async def swap_published_many(self, states: list[tuple[str, str]]) -> list[str]:
        return [await self.swap_published(user_id, state) for user_id, state in states]

    def states(self, user_ids: list[str]) -> dict[str, list[str]]:
        with self._lock:
            return {u: list(self._entries.get(u, {}).values()) for u in user_ids}


class RedisStore:
    """Many processes: the layout and expiry rules in the module docstring."""

    def __init__(self, url: str, prefix: str, proc: str, ttl: float) -> None:
        self.url, self.proc = url, proc
        self.ttl_ms = int(ttl * 1000)
        self.prefix = f"{prefix}:presence"
        self._async: Any = None  # redis.asyncio client, made in the event loop that uses it
        self._sync: Any = None
        self._sync_lock = threading.Lock()
        self._refresh: Any = None  # the heartbeat's script (`_REFRESH_LUA`), registered on first use
        self._write: Any = None  # `_WRITE_LUA`, registered on first use
        # Entry writes waiting for the next batch, and the future their callers wait on; the
        # batch being written (one at a time, so writes reach Redis in the order asked).
        self._ops: list[tuple[str, str, str, str]] = []
        self._ops_done: asyncio.Future | None = None
        self._writer: asyncio.Task | None = None

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}:u:{user_id}"

    def _proc_key(self, proc: str) -> str:
        return f"{self.prefix}:p:{proc}"

    def _client(self) -> Any:
        if self._async is None:
            import redis.asyncio

            self._async = redis.asyncio.Redis.from_url(self.url, decode_responses=True)
        return self._async

    def _sync_client(self) -> Any:
        with self._sync_lock:
            if self._sync is None:
                import redis

                self._sync = redis.Redis.from_url(self.url, decode_responses=True)
            return self._sync

    def _value(self, state: str) -> str:
        return f"{state}:{_now_ms() + self.ttl_ms}"

    async def put(self, user_id: str, key: str, state: str) -> None:
        await self._batched(("p", user_id, key, self._value(state)))

    async def drop(self, user_id: str, key: str, *, last_local: bool) -> None:
        await self._batched(("l" if last_local else "d", user_id, key, ""))

    async def _batched(self, op: tuple[str, str, str, str]) -> None:
        """Queue an entry write for the next batch and wait until it is written (raises what
        the batch raised). Every connection's handshake and end wrote its entry with a pipeline
        of its own (3-4 commands packed and parsed by redis-py in the event loop, a socket write
        each, and a pool connection each when many were in flight: 162-207 us of event-loop CPU
        per put, 100 in flight); a batch is one script call for all the writes asked for while
        the previous batch was under way, or within WRITE_LINGER_SECONDS of the first."""
        if self._ops_done is None:
            self._ops_done = asyncio.get_running_loop().create_future()
        done = self._ops_done
        self._ops.append(op)
        if self._writer is None or self._writer.done():
            # A batch begun by a connection's entry waits for others (handshakes come apart);
            # one begun by an end does not: some callers end connections one after another
            # (a revocation, an app's tokens revoked) and would wait for each.
            linger = WRITE_LINGER_SECONDS if op[0] == "p" else 0
            self._writer = asyncio.get_running_loop().create_task(self._write_batches(linger))
        await done

    async def _write_batches(self, linger: float) -> None:
        client = self._client()
        if self._write is None:
            self._write = client.register_script(_WRITE_LUA)
        await asyncio.sleep(linger)  # the writes asked for meanwhile join the batch
        while self._ops:
            ops, done = self._ops, self._ops_done
            self._ops, self._ops_done = [], None
            try:
                for start in range(0, len(ops), HEARTBEAT_CHUNK):  # short scripts, as the heartbeat's
                    chunk = ops[start : start + HEARTBEAT_CHUNK]
                    args: list[Any] = [self.ttl_ms]
                    for op in chunk:
                        args += op
                    keys = [self._proc_key(self.proc), *(self._user_key(op[1]) for op in chunk)]
                    await self._write(keys=keys, args=args)
            except Exception as error:  # each caller hears of it (the hub logs, once per connection)
                if done is not None and not done.done():
                    done.set_exception(error)
                    done.exception()  # retrieved: callers that went away leave no warning behind
                continue
            if done is not None and not done.done():
                done.set_result(None)

    async def heartbeat(self, entries: list[tuple[str, str, str]]) -> bool:
        now = _now_ms()
        client = self._client()
        if self._refresh is None:
            self._refresh = client.register_script(_REFRESH_LUA)
        # What `put` does for one entry, for every entry, as a script per HEARTBEAT_CHUNK entries:
        # as three commands an entry, the heartbeat was the event loop's largest cost that grows
        # with the connections held (7% of its samples at 5,000-7,000 connections, bench idle
        # scenario, py-spy), redis-py packing and parsing each command.
        for start in range(0, len(entries), HEARTBEAT_CHUNK):
            chunk = entries[start : start + HEARTBEAT_CHUNK]
            args: list[Any] = [self.ttl_ms]
            for _user_id, key, state in chunk:
                args += (key, f"{state}:{now + self.ttl_ms}")
            await self._refresh(keys=[self._user_key(user_id) for user_id, _key, _state in chunk], args=args)
        async with client.pipeline(transaction=False) as pipe:
            users = {user_id for user_id, _key, _state in entries}
            if users:
                pipe.sadd(self._proc_key(self.proc), *users)
            # Kept long enough for a live process to reap this one if it dies.
            pipe.pexpire(self._proc_key(self.proc), PUBLISHED_KEEP_MS)
            pipe.hset(f"{self.prefix}:beats", self.proc, now)
            pipe.zadd(f"{self.prefix}:procs", {self.proc: now + self.ttl_ms})
            results = await pipe.execute()
        return results[-1] == 1  # zadd counts added members: 1 = we were not registered

    async def reap(self) -> dict[str, datetime]:
        client = self._client()
        dead = await client.zrangebyscore(f"{self.prefix}:procs", "-inf", _now_ms(), withscores=True)
        affected: dict[str, datetime] = {}
        for proc, deadline in dead:
            if proc == self.proc:
                continue  # we stalled; our next heartbeat re-registers us
            if not await client.set(f"{self.prefix}:reap:{proc}", self.proc, nx=True, px=self.ttl_ms):
                continue  # another process is on it
            users = sorted(await client.smembers(self._proc_key(proc)))
            last_beat = await client.hget(f"{self.prefix}:beats", proc)
            seen = datetime.fromtimestamp(int(last_beat or deadline) / 1000, tz=UTC)
            async with client.pipeline(transaction=False) as pipe:
                for user_id in users:
                    pipe.hkeys(self._user_key(user_id))
                fields_per_user = await pipe.execute()
            async with client.pipeline(transaction=False) as pipe:
                for user_id, fields in zip(users, fields_per_user, strict=True):
                    stale = [f for f in fields if f.startswith(f"{proc}/")]
                    if stale:
                        pipe.hdel(self._user_key(user_id), *stale)
                    affected[user_id] = max(seen, affected.get(user_id, seen))
                pipe.delete(self._proc_key(proc))
                pipe.hdel(f"{self.prefix}:beats", proc)
                pipe.zrem(f"{self.prefix}:procs", proc)
                await pipe.execute()
            logger.warning("presence: reaped dead process %s (%d users)", proc, len(users))
        return affected

    async def swap_published(self, user_id: str, state: str) -> str:
        previous = await self._client().set(
            f"{self.prefix}:pub:{user_id}", state, get=True, px=PUBLISHED_KEEP_MS
        )
        return previous or OFFLINE

    async def swap_published_many(self, states: list[tuple[str, str]]) -> list[str]:
        if not states:
            return []
        async with self._client().pipeline(transaction=False) as pipe:
            for user_id, state in states:
                pipe.set(f"{self.prefix}:pub:{user_id}", state, get=True, px=PUBLISHED_KEEP_MS)
            previous = await pipe.execute()
        return [value or OFFLINE for value in previous]

    def states(self, user_ids: list[str]) -> dict[str, list[str]]:
        if not user_ids:
            return {}
        now = _now_ms()
        with self._sync_client().pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.hvals(self._user_key(user_id))
            results = pipe.execute()
        states: dict[str, list[str]] = {}
        for user_id, values in zip(user_ids, results, strict=True):
            live = []
            for value in values:
                state, _, expires = value.rpartition(":")
                if expires.isdigit() and int(expires) > now:
                    live.append(state)
            states[user_id] = live
        return states

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.gather(self._writer, return_exceptions=True)
        self._writer = None
        if self._async is not None:
            await self._async.aclose()
            self._async = None
            self._refresh = None
            self._write = None


def _layer_prefix() -> str:
    config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    return str(config.get("prefix") or "chat")


@dataclass(frozen=True)
class Presence:
    """What a viewer may know of a user's presence."""

    user_id: str
    state: str  # foreground | background | offline
    last_seen: datetime | None  # only when offline, and not hidden

    @property
    def online(self) -> bool:
        return self.state != OFFLINE


class PresenceTracker:
    """This process's connections, the heartbeat that keeps them alive in the store, the reaper
    of dead processes, and the debounced publisher. One per process, shared by both hubs."""

    def __init__(self) -> None:
        self.proc = new_public_id()
        self.local: dict[str, tuple[str, str]] = {}  # conn id -> (user id, state)
        self.by_user: dict[str, set[str]] = defaultdict(set)
        self._store: PresenceStore | None = None
        # Users whose presence may have changed -> when they are due (loop time), in due order
        # (every change waits the same debounce), and the one timer that publishes them.
        self._pending: dict[str, float] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._flushed_at = 0.0
        self._publishing: set[asyncio.Task] = set()  # held so the loop cannot drop them
        self._task: asyncio.Task | None = None
        self.stats = {"published": 0, "reaped_users": 0, "errors": 0}

    @property
    def store(self) -> PresenceStore:
        if self._store is None:
            chat = settings.CHAT
            if settings.REDIS_URL:
                self._store = RedisStore(
                    settings.REDIS_URL, _layer_prefix(), self.proc, chat["PRESENCE_TTL_SECONDS"]
                )
            else:
                self._store = MemoryStore()
        return self._store

    def _key(self, conn_id: str) -> str:
        return f"{self.proc}/{conn_id}"

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the heartbeat in the running loop (once). Called at startup and, lazily, by the
        first connection."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        # Shutting down cleanly: the connections already ended; publish their offline
        # transitions now rather than leaving contacts to wait for nothing.
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        pending = list(self._pending)
        self._pending.clear()
        if pending:
            try:
                await asyncio.wait_for(self._publish(pending), timeout=3)
            except TimeoutError:
                logger.warning("presence: %d offline transitions not published at shutdown", len(pending))
        close = getattr(self._store, "close", None)
        if close is not None:
            await close()

    # --- hooks called by the hub ------------------------------------------------------------

    async def connected(self, conn: Connection) -> None:
        """A connection was authenticated and greeted: it counts, in the foreground."""
        await self.start()
        self.local[conn.id] = (conn.user_id, FOREGROUND)
        metrics.presence_entries_set(len(self.local))
        self.by_user[conn.user_id].add(conn.id)
        await self.store.put(conn.user_id, self._key(conn.id), FOREGROUND)
        self.changed(conn.user_id)

    async def disconnected(self, conn: Connection) -> None:
        """A connection ended (any reason). Unknown connections are ignored."""
        entry = self.local.pop(conn.id, None)
        if entry is None:
            return
        metrics.presence_entries_set(len(self.local))
        user_id = entry[0]
        conns = self.by_user.get(user_id, set())
        conns.discard(conn.id)
        last_local = not conns
        if last_local:
            self.by_user.pop(user_id, None)
        await self.store.drop(user_id, self._key(conn.id), last_local=last_local)
        if last_local:
            await call(account_services.user_last_seen_record, user_ids=[user_id], at=timezone.now())
        self.changed(user_id)

    async def set_state(self, conn: Connection, state: str) -> None:
        """A device reported going to the foreground or the background."""
        if conn.id not in self.local:
            return
        self.local[conn.id] = (conn.user_id, state)
        await self.store.put(conn.user_id, self._key(conn.id), state)
        self.changed(conn.user_id)

    def changed(self, user_id: str) -> None:
        """Something about the user's presence may have changed: publish within DEBOUNCE
        seconds (plus at most PUBLISH_EVERY_SECONDS) if what others see differs from what was
        last published. Changes due together are published together: one database call and
        one store read for all of them (a reconnect storm changes thousands of users)."""
        if user_id in self._pending:
            return
        loop = asyncio.get_running_loop()
        self._pending[user_id] = loop.time() + settings.CHAT["PRESENCE_DEBOUNCE_SECONDS"]
        if self._flush is None:
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        due = next(iter(self._pending.values()))
        self._flush = loop.call_at(max(due, self._flushed_at + PUBLISH_EVERY_SECONDS), self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush = None
        self._flushed_at = loop.time()
        # The loop may fire a timer up to its clock resolution early; changes due within
        # BATCH_SLACK_SECONDS go now, with the rest of the batch.
        horizon = self._flushed_at + BATCH_SLACK_SECONDS
        due = []
        for user_id, at in self._pending.items():
            if at > horizon:
                break
            due.append(user_id)
        for user_id in due:
            del self._pending[user_id]
        if due:
            task = loop.create_task(self._publish(due))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        if self._pending:
            self._schedule(loop)

    # --- publishing -------------------------------------------------------------------------

    async def _publish(self, user_ids: list[str]) -> None:
        """Publish the presence of these users where it differs from what was last published,
        each to the users sharing a conversation with them: two database calls in all."""
        try:
            found = await call(presence_of, user_ids=user_ids)  # accounts that are gone: left out
            # One round trip for the batch (every connecting user is in one): one per user cost
            # 97-161 us of event-loop CPU per user, a pipeline 17-20 us.
            previous = await self.store.swap_published_many([(seen.user_id, seen.state) for seen in found])
            news = [seen for seen, before in zip(found, previous, strict=True) if before != seen.state]
            if not news:
                return
            audiences = await call(msg_selectors.co_member_ids_many, user_ids=[s.user_id for s in news])
            for seen in news:
                audience = audiences.get(seen.user_id)
                if audience:
                    event = account_events.presence_changed(
                        user_id=seen.user_id, state=seen.state, last_seen=iso_ms(seen.last_seen)
                    )
                    await publish_now(event, user_ids=audience)
                self.stats["published"] += 1
        except Exception:
            self.stats["errors"] += 1
            logger.exception("presence publish failed: %d users", len(user_ids))

    # --- heartbeat --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        period = settings.CHAT["PRESENCE_HEARTBEAT_SECONDS"]
        last_seen_due = time.monotonic() + LAST_SEEN_EVERY_SECONDS
        while True:
            try:
                await self._beat()
                if time.monotonic() >= last_seen_due and self.by_user:
                    last_seen_due = time.monotonic() + LAST_SEEN_EVERY_SECONDS
                    await call(
                        account_services.user_last_seen_record, user_ids=list(self.by_user), at=timezone.now()
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats["errors"] += 1
                logger.exception("presence heartbeat failed")
            await asyncio.sleep(period)

    async def _beat(self) -> None:
        entries = [(user_id, self._key(conn_id), state) for conn_id, (user_id, state) in self.local.items()]
        if await self.store.heartbeat(entries):
            for user_id in list(self.by_user):  # reaped while stalled: we are back
                self.changed(user_id)
        reaped = await self.store.reap()
        if not reaped:
            return
        self.stats["reaped_users"] += len(reaped)
        for at in set(reaped.values()):
            await call(
                account_services.user_last_seen_record,
                user_ids=[u for u, seen in reaped.items() if seen == at],
                at=at,
            )
        for user_id in reaped:
            self.changed(user_id)


tracker = PresenceTracker()


# --- reads (sync: REST views and socket handlers through the database thread) --------------


def presence_of(*, user_ids: list[str], viewer_id: str | None = None) -> list[Presence]:
    """The presence of these users as `viewer_id` (None: everyone else) may see it: hidden
    users are offline without a last-seen time to anyone but themselves. Unknown ids are left
    out. One query, one store read."""
    fields = account_selectors.users_presence_fields(public_ids=user_ids)
    known = [u for u in user_ids if u in fields]
    states = tracker.store.states(known)
    result = []
    for user_id in known:
        hidden, last_seen = fields[user_id]
        if hidden and user_id != viewer_id:
            result.append(Presence(user_id, OFFLINE, None))
            continue
        state = aggregate(states.get(user_id, []))
        result.append(Presence(user_id, state, last_seen if state == OFFLINE else None))
    return result


def presence_list(*, viewer: User, user_ids: object) -> list[Presence]:
    """Presence of the users the viewer shares a conversation with (and their own), in the
    order asked; other ids are left out. At most CHAT CONVERSATION_LIST_LIMIT ids: as many
    people as a conversation list shows."""
    maximum = settings.CHAT["CONVERSATION_LIST_LIMIT"]
    if (
        not isinstance(user_ids, list)
        or len(user_ids) > maximum
        or not all(isinstance(u, str) for u in user_ids)
    ):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"user_ids must be a list of at most {maximum} user ids.",
            {"field": "user_ids"},
        )
    unique = list(dict.fromkeys(user_ids))
    allowed = msg_selectors.co_members_among(user=viewer, user_ids=unique)
    if viewer.public_id in unique:
        allowed.add(viewer.public_id)
    return presence_of(user_ids=[u for u in unique if u in allowed], viewer_id=viewer.public_id)
