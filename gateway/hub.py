"""The life of a connection, the same for every protocol and every transport.

One hub serves one mount: a protocol (`gateway.protocol.Protocol`, given as a parameter) on a
transport (the six-method contract of `gateway.transports.base.Transport`). It authenticates a
new connection, subscribes the process to its user's bus group, has the protocol greet it, runs
each client event through the rate limits and the protocol's handler, renders bus events through
the protocol and the audience evaluator into its local connections, and ends connections whose
token expired or whose session was revoked. It names no wire event: what goes on the wire is the
protocol's.

Presence and receipts hook in here: a greeted connection is reported to the presence tracker and
a forgotten one removed from it; receipt events skip users who turned read receipts off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from accounts.identity import Policy
from chatproject.bus.groups import CONVERSATION_PREFIX, USER_PREFIX, app_group, conversation_group, user_group
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.tasks import spawn
from chatproject.ops import metrics
from messaging import events as msg_events
from messaging.selectors import ConversationSnapshot, messages_since

from . import lanes, presence
from .audience import Local, deliveries
from .auth import Authenticated, authenticate, connection_renew, connection_snapshot
from .bridge import Watch, bridge
from .connection import Connection, TokenBucket
from .protocol import Answer, Protocol, Refusal
from .sync import call, call_read
from .transports.base import Transport
from .transports.handshake import Admission, Handshake

logger = logging.getLogger(__name__)

ENDED = ApplicationError(ErrorCode.NOT_AUTHENTICATED, "The connection has ended; reconnect.")
UNBOUND = ApplicationError(ErrorCode.NOT_AUTHENTICATED, "Not bound to a user yet.")
TOO_LARGE = ApplicationError(ErrorCode.PAYLOAD_TOO_LARGE, "The event is too large.")
DRAINING = ApplicationError(ErrorCode.SERVER_DRAINING, "This server is shutting down; connect to another.")
BUSY = ApplicationError(ErrorCode.TOO_MANY_CONNECTIONS, "Too many connections are being set up; retry.")
# A handshake that raced the drain is accepted, then its transport is closed the way its clients
# reconnect from: a protocol refusal (CONNECT_ERROR, or ExpressChat's auth-failure and namespace
# disconnect) would tell most socket.io clients to stay away for good.
RECONNECT = Refusal(retry=True)
# Refusals that are not about the client's credentials: the client is sent away to retry, the
# same way.
RETRYABLE = {ErrorCode.INTERNAL, ErrorCode.TOO_MANY_CONNECTIONS}
# A connection newly routed to a conversation is caught up from at most this many reads of
# CHAT HISTORY_MAX_PAGE_SIZE messages (`Hub._catch_up`); more: it is told to resync.
CATCH_UP_READS = 3
# After a catch-up, live copies of the messages it sent are dropped for this long: a message
# committed before its read may have its copy still on the way (published after the commit).
CATCH_UP_WINDOW_SECONDS = 30.0

# Live connections of this process, across every hub: by user and by client address (caps).
live_by_user: Counter[str] = Counter()
live_by_address: Counter[str] = Counter()
# Of those, connections admitted unbound (`binds_late`) and not bound yet, by client address.
unbound_by_address: Counter[str] = Counter()
# Handshakes being authenticated, by client address: they count against the address cap too, or
# concurrent handshakes from one address would all pass a check made before their first await.
connecting_by_address: Counter[str] = Counter()
# An address at its cap is told to operators once per this many seconds (WARNING): a deployment
# whose clients share an address (a NAT, a proxy without --proxy-headers, a load generator) sees
# why its connections stop growing; refusals themselves are logged at INFO, one line each.
CAP_WARNING_SECONDS = 60.0
# Address -> (when it was last told, refusals since then).
cap_warned: dict[str, tuple[float, int]] = {}


def _address_at_cap(address: str, cap: int) -> None:
    """A handshake from an address at CHAT SOCKET_MAX_PER_ADDRESS is being sent away to retry.
    The process goes on serving everyone else: the cap refuses, it never stops the server (the
    drain runs on SIGTERM only, gateway/drain.py). Counted, and told at most once a minute per
    address, with the refusals since the last time."""
    now = time.monotonic()
    told, refused = cap_warned.get(address, (None, 0))
    if told is not None and now - told < CAP_WARNING_SECONDS:
        cap_warned[address] = (told, refused + 1)
        return
    for other, (when, _) in list(cap_warned.items()):  # bounded: addresses told recently
        if now - when >= CAP_WARNING_SECONDS:
            del cap_warned[other]
    cap_warned[address] = (now, 0)
    logger.warning(
        "address at its connection cap: address=%s live=%d connecting=%d cap=%d "
        "(CHAT_SOCKET_MAX_PER_ADDRESS); its new handshakes are sent away to retry "
        "(%d more since the last warning)",
        address,
        live_by_address[address],
        connecting_by_address[address],
        cap,
        refused,
    )


class _Held:
    """The bus group a first-party handshake subscribed to before its session check (`authenticate`
    calls it with the user's id from the token's verified claims), and the watch on it from
    before the subscription. Released if the handshake is refused; else the connection takes the
    reference over (its `groups`) and `greet` reads the watch."""

    __slots__ = ("groups", "watch")

    def __init__(self) -> None:
        self.groups: list[str] = []
        self.watch: Watch | None = None

    async def __call__(self, user_id: str) -> None:
        groups = [user_group(user_id)]
        self.watch = bridge.watch(groups)
        await bridge.subscribe(groups)
        self.groups = groups

    async def release(self) -> None:
        if self.watch is not None:
            bridge.unwatch(self.watch)
            self.watch = None
        groups, self.groups = self.groups, []
        if groups:
            await bridge.unsubscribe(groups)


class Catching:
    """A connection's catch-up on one conversation (`Hub._catch_up`): the bus events held back
    from it while it runs (`pending`, None once it ended), and the seq up to which it sent the
    conversation's messages from the database (`through`)."""

    __slots__ = ("pending", "through")

    def __init__(self, since: int) -> None:
        self.pending: list[dict[str, Any]] | None = []
        self.through = since


def _message_seq(event: dict[str, Any]) -> int | None:
    """The seq of a new message's bus event (`message.created`), else None."""
    if event.get("type") != "message.created":
        return None
    seq = (event.get("message") or {}).get("seq")
    return seq if isinstance(seq, int) else None


class Hub:
    def __init__(self, protocol: Protocol, transport: Transport, policy: Policy | None = None) -> None:
        self.protocol = protocol
        self.transport = transport
        # Who may connect at this mount (registry keys `realm`, `credentials`, `apps`).
        self.policy = policy or Policy(protocol=protocol.name)
        self.connections: dict[str, Connection] = {}
        self.by_user: dict[str, set[str]] = defaultdict(set)
        self.user_buckets: dict[str, TokenBucket] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        # Accepted handshakes that the protocol refuses after CONNECT (events, then a close).
        self.refusing: dict[str, Refusal] = {}
        # Access tokens renewed at the handshake, told to the client in its greeting.
        self.renewed: dict[str, str] = {}
        self.started: dict[str, float] = {}  # handshakes in progress: when they began
        # Admitted connections whose greeting snapshot was read with their session check, after
        # the subscription to their user's group, and the watch on that group: until `greet`.
        self.opened: dict[str, tuple[ConversationSnapshot, Watch]] = {}
        # Connections of a `binds_late` protocol admitted without credentials, until an event
        # binds them: their handshake and a budget of binding attempts (each may read the
        # database).
        self.unbound: dict[str, tuple[Handshake, TokenBucket]] = {}
        self.addresses: dict[str, str] = {}  # connection -> client address (for the caps)
        metrics.register_event_names(protocol.name, protocol.handlers)
        # Users with local connections who turned read receipts off: receipt emits skip them.
        # Kept from the handshake's user row and `user.settings_changed` events.
        self.receipts_off: set[str] = set()
        # Capability -> local connections without it (emits that require it skip them).
        self.lacking: dict[str, set[str]] = defaultdict(set)
        self.local = Local(self.by_user, self.receipts_off, self.lacking)
        # Connections just routed to a conversation by a membership event (`_catch_up`): bus
        # group -> connection -> its catch-up (the events held back from it, then for a while
        # the seq up to which live copies of messages are dropped).
        self.catching: dict[str, dict[str, Catching]] = {}
        self.starting: list[tuple[Connection, str, int]] = []  # catch-ups to start (`deliver`)
        # Whether rendering needs the protocol's `prepare` (a read, a cache): most protocols
        # render the bus event as it is, and need no coroutine per bus message for it.
        self.prepares = type(protocol).prepare is not Protocol.prepare
        # Events that may run ahead of their connection's earlier sends (gateway/lanes.py).
        self.pipelined = protocol.pipelined if settings.CHAT["SEND_PIPELINE"] > 1 else frozenset()
        # handshake_rereads: greetings read again because the bus spoke during the handshake (`greet`).
        self.stats = {"events": 0, "errors": 0, "rate_limited": 0, "handshake_rereads": 0}
        # Graceful drain (gateway.drain): refuse new connections; client events being handled.
        self.draining = False
        self.in_flight = 0
        bridge.add_sink(self)

    # --- connection lifecycle ---------------------------------------------------------------

    async def connect(self, conn_id: str, handshake: Handshake) -> Admission:
        """Called when a client asks to connect: authenticate it. Refused: the transport
        answers with `error` (or, for protocols that refuse after CONNECT, the refusal is told
        by `greet`). Accepted: the transport answers CONNECT, then calls `greet`."""
        self.started[conn_id] = time.monotonic()
        if self.draining:
            return self._sent_away(conn_id)
        chat = settings.CHAT
        address = handshake.remote or ""
        if live_by_address[address] + connecting_by_address[address] >= chat["SOCKET_MAX_PER_ADDRESS"]:
            _address_at_cap(address, chat["SOCKET_MAX_PER_ADDRESS"])
            return self._refused(
                conn_id, ApplicationError(ErrorCode.TOO_MANY_CONNECTIONS, "Too many connections.")
            )
        connecting_by_address[address] += 1
        # First-party mounts subscribe to the user's bus group before the session check, so the
        # check and the greeting's read are one call (`authenticate`, `greet`).
        held = _Held()
        try:
            credentials = self.protocol.credentials(handshake)
            if self.protocol.binds_late and credentials.access is None and credentials.handle is None:
                if unbound_by_address[address] >= chat["SOCKET_MAX_UNBOUND_PER_ADDRESS"]:
                    raise ApplicationError(ErrorCode.TOO_MANY_CONNECTIONS, "Too many unbound connections.")
                return self._admit_unbound(conn_id, handshake, address)
            authed = await authenticate(credentials=credentials, policy=self.policy, before_read=held)
            if live_by_user[authed.user.public_id] >= chat["SOCKET_MAX_PER_USER"]:
                raise ApplicationError(ErrorCode.TOO_MANY_CONNECTIONS, "Too many connections of this user.")
            if authed.snapshot is None:  # nothing read with the check: `greet` subscribes and reads
                await held.release()
        except ApplicationError as error:
            await held.release()
            return self._refused(conn_id, error)
        except Exception:
            await held.release()
            logger.exception("handshake failed: protocol=%s conn=%s", self.protocol.name, conn_id)
            return self._refused(conn_id, ApplicationError(ErrorCode.INTERNAL, "Internal error."))
        finally:  # from here to the admission below nothing awaits: the count moves over exactly
            connecting_by_address[address] -= 1
            if connecting_by_address[address] <= 0:
                del connecting_by_address[address]
        if self.draining:  # the drain began while this client was authenticated
            await held.release()
            return self._sent_away(conn_id)
        conn = self._admit(conn_id, authed, handshake)
        if held.watch is not None and authed.snapshot is not None:
            conn.groups.extend(held.groups)  # the connection holds the subscription from now on
            self.opened[conn_id] = (authed.snapshot, held.watch)
        live_by_address[address] += 1
        self.addresses[conn_id] = address
        return Admission(True)

    def _admit_unbound(self, conn_id: str, handshake: Handshake, address: str) -> Admission:
        """Admit a connection that presented nothing (`binds_late`). It holds a socket and costs
        a little memory and a heartbeat until an event binds it, so it is bounded: at most CHAT
        SOCKET_MAX_UNBOUND_PER_ADDRESS per client address, and closed (the way clients reconnect
        from) if nothing bound it within SOCKET_UNBOUND_SECONDS."""
        chat = settings.CHAT
        self.unbound[conn_id] = (
            handshake,
            TokenBucket(chat["SOCKET_RATE_BURST"], chat["SOCKET_RATE_PER_SECOND"]),
        )
        live_by_address[address] += 1
        unbound_by_address[address] += 1
        self.addresses[conn_id] = address
        loop = asyncio.get_running_loop()
        self.timers[conn_id] = loop.call_later(
            chat["SOCKET_UNBOUND_SECONDS"], lambda: spawn(self._unbound_expired(conn_id), loop)
        )
        return Admission(True)

    def _unbound_done(self, conn_id: str) -> tuple[Handshake, TokenBucket] | None:
        """Take a connection off the unbound list (bound or gone), releasing its address count."""
        entry = self.unbound.pop(conn_id, None)
        if entry is not None:
            address = self.addresses.get(conn_id, "")
            unbound_by_address[address] -= 1
            if unbound_by_address[address] <= 0:
                del unbound_by_address[address]
        return entry

    async def _unbound_expired(self, conn_id: str) -> None:
        """Called SOCKET_UNBOUND_SECONDS after an unbound connection was admitted: if nothing
        bound it, close it. Its client reconnects (the transport goes, not the namespace), and a
        real app binds its new socket with the next event that carries its handle."""
        if conn_id not in self.unbound:
            return
        self.timers.pop(conn_id, None)
        logger.info("unbound connection closed: protocol=%s conn=%s", self.protocol.name, conn_id)
        try:
            await self.transport.close(conn_id, reconnect=True)
        except Exception:
            logger.exception("closing an unbound connection failed: conn=%s", conn_id)
        await self.forget(conn_id)

    def _admit(self, conn_id: str, authed: Authenticated, handshake: Handshake) -> Connection:
        """Register an authenticated connection (not greeted yet)."""
        chat = settings.CHAT
        conn = Connection(
            id=conn_id,
            user=authed.user,
            session_id=authed.session_id,
            expires_at=authed.expires_at,
            protocol=self.protocol.name,
            transport=self.transport.name,
            refresh_token=authed.refresh_token,
            bucket=TokenBucket(chat["SOCKET_RATE_BURST"], chat["SOCKET_RATE_PER_SECOND"]),
            capabilities=self.protocol.capabilities(handshake),
            state=self.protocol.new_state(handshake),
            realm=authed.realm,
        )
        conn.rescheduler = self._schedule_expiry  # no closure over conn: no cycle per connection
        if authed.new_access:
            self.renewed[conn_id] = authed.new_access
        self.connections[conn_id] = conn
        self.by_user[conn.user_id].add(conn_id)
        live_by_user[conn.user_id] += 1
        self._note_settings(conn.user_id, conn.user.read_receipts_enabled)
        return conn

    async def _bind(self, conn_id: str, event: str, args: list[Any]) -> Connection | None:
        """An event of an unbound connection: bind it to the user its credentials name (the
        protocol's `claim`) and greet it, or None (nothing claimed, refused, over the budget:
        the connection stays unbound)."""
        handshake, bucket = self.unbound[conn_id]
        if not bucket.take():
            return None
        try:
            credentials = self.protocol.claim(event, args)
            if credentials is None:
                return None
            authed = await authenticate(credentials=credentials, policy=self.policy)
            if live_by_user[authed.user.public_id] >= settings.CHAT["SOCKET_MAX_PER_USER"]:
                raise ApplicationError(ErrorCode.TOO_MANY_CONNECTIONS, "Too many connections of this user.")
        except ApplicationError as error:
            logger.info(
                "binding refused: protocol=%s conn=%s code=%s", self.protocol.name, conn_id, error.code
            )
            metrics.connect_refused(self.protocol.name, self.transport.name, str(error.code))
            return None
        except Exception:
            logger.exception("binding failed: protocol=%s conn=%s", self.protocol.name, conn_id)
            return None
        if conn_id not in self.unbound or self.draining:  # gone meanwhile (a drain closes it)
            return None
        self._unbound_done(conn_id)
        timer = self.timers.pop(conn_id, None)  # its unbound deadline
        if timer is not None:
            timer.cancel()
        self._admit(conn_id, authed, handshake)
        return await self.greet(conn_id)

    def _refused(self, conn_id: str, error: ApplicationError) -> Admission:
        self.started.pop(conn_id, None)
        # The reason, for operators (a tenant's slow verification URL, a wrong key...): some
        # protocols can only tell the client the code. Reasons never contain credentials.
        logger.info(
            "handshake refused: protocol=%s conn=%s code=%s reason=%s",
            self.protocol.name,
            conn_id,
            error.code,
            error.message,
        )
        metrics.connect_refused(self.protocol.name, self.transport.name, str(error.code))
        if error.code in RETRYABLE:  # accepted, then closed at once: the client retries later
            self.refusing[conn_id] = RECONNECT
            return Admission(True)
        refusal = self.protocol.refusal(error)
        if refusal.connect_error is not None:
            return Admission(False, refusal.connect_error)
        self.refusing[conn_id] = refusal
        return Admission(True)

    def _sent_away(self, conn_id: str) -> Admission:
        self.started.pop(conn_id, None)
        metrics.connect_refused(self.protocol.name, self.transport.name, str(ErrorCode.SERVER_DRAINING))
        self.refusing[conn_id] = RECONNECT
        return Admission(True)

    async def greet(self, conn_id: str) -> Connection | None:
        """Called once the transport answered CONNECT: subscribe, check, greet."""
        if conn_id in self.unbound:  # greeted when an event binds it
            self.started.pop(conn_id, None)
            return None
        refusal = self.refusing.pop(conn_id, None)
        if refusal is RECONNECT:
            await self.transport.close(conn_id, reconnect=True)
            return None
        if refusal is not None:
            await self._tell_and_close(conn_id, refusal)
            return None
        conn = self.connections.get(conn_id)
        if conn is None:
            return None
        snapshot: ConversationSnapshot | None = None
        opened = self.opened.pop(conn_id, None)
        if opened is not None:
            # Subscribed at `connect` before the session check, which read the snapshot too.
            # Whatever committed after that subscription reached this process through the bus:
            # if nothing came for the user's group until the connection joined its room (a
            # logout, a ban, a message, a membership change), nothing was missed and the
            # snapshot stands; else check and read again, as below, now that it has joined.
            snapshot, watch = opened
            await self.transport.join_local(conn_id, list(conn.groups))
            bridge.unwatch(watch)
            if watch.heard:
                snapshot = None
                self.stats["handshake_rereads"] += 1
            user_rooms: list[str] = []
        else:
            # Subscribe before checking or reading anything: a logout, ban or membership change
            # that commits after this point reaches us through the bus; whatever committed
            # before is seen by the checks and reads below.
            user_rooms = [user_group(conn.user_id)]
            if conn.realm is not None:  # a tenant's user: app-wide revocations reach it too
                user_rooms.append(app_group(conn.realm))
            conn.groups.extend(user_rooms)
            await self.transport.join_local(conn_id, user_rooms)
        try:
            if user_rooms:
                await bridge.subscribe(user_rooms)
            if snapshot is None:
                snapshot = await call_read(connection_snapshot, user=conn.user, session_id=conn.session_id)
        except ApplicationError as error:
            await self._tell_and_close(conn_id, self.protocol.refusal(error))
            await self.forget(conn_id)
            return None
        except Exception:  # the bus or the database is unreachable: send the client to retry
            logger.warning("handshake failed after authentication: conn=%s", conn_id, exc_info=True)
            await self._tell_and_close(conn_id, RECONNECT)
            await self.forget(conn_id)
            return None
        if conn_id not in self.connections:  # revoked (or gone) while we were reading
            return None
        for conversation_id in snapshot.group_ids:
            await self._route(conn.user_id, conversation_group(conversation_id), join=True, only=conn_id)
        for capability in self.protocol.optional_capabilities:
            if capability not in conn.capabilities:
                self.lacking[capability].add(conn_id)
        new_access = self.renewed.pop(conn_id, None)
        if new_access:
            await self._send_all(conn_id, self.protocol.token_renewed(conn, new_access))
        await self._send_all(conn_id, self.protocol.greeting(conn, snapshot))
        try:
            welcome = await self.protocol.welcome(conn)
        except Exception:  # best effort, like presence: the connection is good without it
            logger.exception("welcome failed: protocol=%s conn=%s", self.protocol.name, conn_id)
            welcome = []
        await self._send_all(conn_id, welcome)
        self._schedule_expiry(conn)
        if not self.transport.is_open(conn_id):  # the client left while we were greeting it
            await self.forget(conn_id)
            return None
        started = self.started.pop(conn_id, None)
        if started is not None:
            metrics.handshake_observed(self.protocol.name, self.transport.name, time.monotonic() - started)
        metrics.connection_opened(self.protocol.name, self.transport.name)
        conn.counted = True  # before the presence write, which waits for its batch (up to 20 ms)
        # Presence hook: only a connection that made it through the greeting counts as online.
        await self._presence(presence.tracker.connected, conn)
        return conn

    async def _tell_and_close(self, conn_id: str, refusal: Refusal) -> None:
        await self._send_all(conn_id, refusal.emits)
        await self.transport.close(conn_id, reconnect=refusal.retry)

    async def _send_all(self, conn_id: str, emits: list[tuple[str, Any]]) -> None:
        for name, payload in emits:
            await self.transport.send(conn_id, name, payload)

    async def _presence(self, hook: Callable[[Connection], Awaitable[None]], conn: Connection) -> None:
        """Presence is best effort: a failing presence store must not break a connection."""
        try:
            await hook(conn)
        except Exception:
            logger.exception("presence hook failed: conn=%s", conn.id)

    def _note_settings(self, user_id: str, read_receipts_enabled: bool) -> None:
        if read_receipts_enabled:
            self.receipts_off.discard(user_id)
        else:
            self.receipts_off.add(user_id)

    async def forget(self, conn_id: str) -> None:
        """Called when a connection ended, for any reason. Idempotent."""
        opened = self.opened.pop(conn_id, None)
        if opened is not None:  # admitted, not greeted: its subscription goes with `groups`
            bridge.unwatch(opened[1])
        self.refusing.pop(conn_id, None)
        self.renewed.pop(conn_id, None)
        self.started.pop(conn_id, None)
        conn = self.connections.pop(conn_id, None)
        timer = self.timers.pop(conn_id, None)
        if timer is not None:
            timer.cancel()
        unbound = self._unbound_done(conn_id)
        if conn is None and unbound is None:
            return
        address = self.addresses.pop(conn_id, "")
        live_by_address[address] -= 1
        if live_by_address[address] <= 0:
            del live_by_address[address]
        if conn is None:
            return
        for lacking in self.lacking.values():
            lacking.discard(conn_id)
        live_by_user[conn.user_id] -= 1
        if live_by_user[conn.user_id] <= 0:
            del live_by_user[conn.user_id]
        sids = self.by_user.get(conn.user_id)
        if sids is not None:
            sids.discard(conn_id)
            if not sids:
                del self.by_user[conn.user_id]
                self.user_buckets.pop(conn.user_id, None)
                self.receipts_off.discard(conn.user_id)
        groups, conn.groups = conn.groups, []
        try:  # forgetting always completes: the presence hook below must run whatever fails here
            await self.transport.leave_local(conn_id, groups)
            await bridge.unsubscribe(groups)
        except Exception:
            logger.exception("unsubscribe failed while forgetting: conn=%s", conn_id)
        await self._presence(presence.tracker.disconnected, conn)  # presence hook
        if conn.counted:  # greeted: the protocol may tell others it has gone
            try:
                await self.protocol.goodbye(conn)
            except Exception:
                logger.exception("goodbye failed: protocol=%s conn=%s", self.protocol.name, conn_id)
        if conn.counted:
            reason = "draining" if self.draining else "ended"
            metrics.connection_closed(self.protocol.name, self.transport.name, reason)

    async def drain(self) -> None:
        """Called by the graceful drain once this process stopped taking connections: tell every
        connection what the protocol says before a drain, then close its transport the way its
        clients reconnect from (to another process, the load balancer no longer sends them here).
        The transports call `forget` as each connection ends."""
        for conn_id in list(self.connections) + list(self.refusing) + list(self.unbound):
            conn = self.connections.get(conn_id)
            try:
                if conn is not None:
                    await self._send_all(conn_id, self.protocol.draining(conn))
                await self.transport.close(conn_id, reconnect=True)
            except Exception:
                logger.exception("drain: closing conn=%s failed", conn_id)

    # --- client events ----------------------------------------------------------------------

    def lane(self, conn_id: str, event: object) -> lanes.Lane | None:
        """For an event the protocol lets run ahead (`Protocol.pipelined`) on a bound
        connection: the connection's lane, for the transport to run the event in
        (`lanes.run`). None: the transport awaits `handle` in place."""
        if type(event) is not str or event not in self.pipelined:
            return None
        conn = self.connections.get(conn_id)
        if conn is None:
            return None
        if conn.lane is None:
            conn.lane = lanes.Lane(settings.CHAT["SEND_PIPELINE"])
        return conn.lane

    def _allowed(self, conn: Connection) -> bool:
        user_bucket = self.user_buckets.get(conn.user_id)
        if user_bucket is None:
            user_bucket = self.user_buckets[conn.user_id] = TokenBucket(
                settings.CHAT["USER_RATE_BURST"], settings.CHAT["USER_RATE_PER_SECOND"]
            )
        return conn.bucket.take() and user_bucket.take()

    async def handle(
        self, conn_id: str, event: str, args: list[Any], *, oversize: bool = False
    ) -> list | None:
        """Called for every client event with all its arguments. Sends what the protocol answers
        and returns the ack arguments (None: no ack). `oversize`: the transport found the
        packet over the protocol limit (but under its own ceiling): refused, nothing is run."""
        conn = self.connections.get(conn_id)
        if conn is None and conn_id in self.unbound:
            conn = await self._bind(conn_id, event if isinstance(event, str) else "", args)
            if conn is None:  # claims nothing that binds: dropped, as the protocol answers that
                return await self._answer(conn_id, self.protocol.answer_error(None, event, UNBOUND))
        if conn is None:
            # Ended (logout, ban, expiry) while this event was in flight: say so, rather than
            # leave the client waiting for an ack until its timeout. Nothing was done.
            return await self._answer(conn_id, self.protocol.answer_error(None, event, ENDED))
        self.stats["events"] += 1
        self.in_flight += 1
        try:
            if conn.lane is not None and conn.lane.entries:  # after its pipelined sends, unless one
                await lanes.drained(conn.lane)
            return await self._handle(conn, conn_id, event, args, oversize)
        finally:
            self.in_flight -= 1

    async def _handle(
        self, conn: Connection, conn_id: str, event: str, args: list[Any], oversize: bool
    ) -> list | None:
        name = event if isinstance(event, str) else ""
        metrics.event_in(self.protocol.name, self.transport.name, name)
        try:
            if not self._allowed(conn):
                self.stats["rate_limited"] += 1
                metrics.event_rate_limited(self.protocol.name, self.transport.name, name)
                raise ApplicationError(ErrorCode.RATE_LIMITED, "Too many events; slow down.")
            if oversize:
                raise TOO_LARGE
            handler = self.protocol.handlers.get(name)
            if handler is None:
                raise ApplicationError(ErrorCode.INVALID, "Unknown event.", {"event": name[:64]})
            outcome = await handler(conn, args)
        except ApplicationError as error:
            self.stats["errors"] += 1
            metrics.event_error(self.protocol.name, self.transport.name, str(error.code))
            return await self._answer(conn_id, self.protocol.answer_error(conn, name[:64], error))
        except Exception:
            self.stats["errors"] += 1
            metrics.event_error(self.protocol.name, self.transport.name, str(ErrorCode.INTERNAL))
            logger.exception("handler failed: event=%s user=%s", name[:64], conn.user_id)
            error = ApplicationError(ErrorCode.INTERNAL, "Internal error.")
            return await self._answer(conn_id, self.protocol.answer_error(conn, name[:64], error))
        if outcome.error is not None:  # refused, with the protocol's own failure event
            self.stats["errors"] += 1
        ack = await self._answer(conn_id, self.protocol.answer(conn, name, outcome))
        if outcome.after is not None:
            try:
                await outcome.after()
            except Exception:  # answered already: nothing more to tell the client
                logger.exception("after-answer work failed: event=%s user=%s", name[:64], conn.user_id)
        if outcome.close:  # what was answered first, then a server-side disconnect
            await self.transport.close(conn_id)
            await self.forget(conn_id)
        return ack

    async def refuse_event(self, conn_id: str, event: str, error: ApplicationError) -> list | None:
        """Called for a client frame the transport could not decode: answered like any refused
        event, nothing is run."""
        conn = self.connections.get(conn_id)
        if conn is not None and conn.lane is not None and conn.lane.entries:
            await lanes.drained(conn.lane)  # answered after the connection's earlier sends
        return await self._answer(conn_id, self.protocol.answer_error(conn, event, error))

    async def _answer(self, conn_id: str, answer: Answer) -> list | None:
        await lanes.turn()  # a pipelined event answers after the one before it
        if answer.emits:  # most answers are an ack alone
            await self._send_all(conn_id, answer.emits)
        return answer.ack

    # --- token expiry -----------------------------------------------------------------------

    def _schedule_expiry(self, conn: Connection) -> None:
        old = self.timers.pop(conn.id, None)
        if old is not None:
            old.cancel()
        if conn.id not in self.connections:
            return
        delay = max(conn.expires_at - time.time(), 0)
        # A method and the id, not a closure (a function, a tuple and three cells per held connection).
        self.timers[conn.id] = asyncio.get_running_loop().call_later(delay, self._expiry_due, conn.id)

    def _expiry_due(self, conn_id: str) -> None:
        spawn(self._expired(conn_id))

    async def _expired(self, conn_id: str) -> None:
        """At the access token's expiry: renew it for connections that hold a refresh token of
        a live session (the protocol tells the client), else end the connection."""
        conn = self.connections.get(conn_id)
        if conn is None:  # already gone: nothing to renew or end
            return
        try:
            await self._renew_or_end(conn)
        except Exception:
            logger.exception("expiry handling failed: conn=%s", conn_id)
            await self.forget(conn_id)

    async def _renew_or_end(self, conn: Connection) -> None:
        conn_id = conn.id
        try:
            access, expires_at = await call(
                connection_renew, user=conn.user, session_id=conn.session_id, refresh=conn.refresh_token
            )
        except ApplicationError as error:
            code = ErrorCode.TOKEN_EXPIRED if error.code == ErrorCode.TOKEN_EXPIRED else error.code
            await self._tell_and_close(conn_id, self.protocol.refusal(ApplicationError(code, error.message)))
            await self.forget(conn_id)
            return
        conn.expires_at = expires_at
        await self._send_all(conn_id, self.protocol.token_renewed(conn, access))
        self._schedule_expiry(conn)

    # --- bus events -------------------------------------------------------------------------

    async def deliver(self, target: str, event: dict[str, Any]) -> None:
        """Called by the bridge for each bus event: apply membership changes to local routing,
        render the event, and send it to the local connections it concerns."""
        if not self.connections:
            return
        kind = event.get("type")
        if kind == "session.revoked":
            await self._revoke(event)
            return
        if kind == "user.settings_changed":
            self._settings_changed(event)
            return
        recipient = target[len(USER_PREFIX) :] if target.startswith(USER_PREFIX) else None
        room = None  # the conversation's group, for a user whose routing to it changes
        if recipient is not None and (event.get("joins") or event.get("leaves")):
            conversation_id = (event.get("conversation") or {}).get("id")
            room = conversation_group(conversation_id) if conversation_id else None
        if recipient is not None and room and recipient in event.get("joins", ()):
            await self._route(recipient, room, join=True, since=event.get("seq"))
        catching = self.catching  # connections being caught up (`_route`): rarely any
        holding = self._hold(target, event) if catching else None
        prepared = event
        if self.prepares:
            try:
                prepared = await self.protocol.prepare(event)
            except Exception:
                logger.exception("prepare failed: protocol=%s type=%s", self.protocol.name, kind)
        for emit, delivery in deliveries(target, event, self.protocol.render(prepared), self.local):
            skip = delivery.skip
            if holding:
                skip = skip | holding
            if emit.scope is not None:
                skip = skip | self._out_of_scope(target, emit.scope)
            sent = await self.transport.fanout(target, emit.name, emit.payload, only=delivery.only, skip=skip)
            if sent:
                metrics.delivery(self.protocol.name, self.transport.name, sent)
        if catching and self.starting:
            self._start_catch_ups()
        if recipient is not None:
            if room and recipient in event.get("leaves", ()):
                await self._route(recipient, room, join=False)
            return
        for user_id in event.get("leaves", ()):
            await self._route(user_id, target, join=False)
        if event.get("leaves_all"):
            for user_id in list(self.by_user):
                await self._route(user_id, target, join=False)

    def wants(self, target: str, event: dict[str, Any]) -> bool:
        """Whether `deliver` of `event` to `target` could send it to (or reroute) a connection
        of this hub: the bridge asks before it publishes the event and before it delivers it.
        No when the hub has no connection, or for a user's group when the user has no
        connection here, or only the one the event came from (its `origin`) and the protocol's
        rendering sends that one nothing (the sender's own copy of a message: it has its ack);
        yes for anything else, and whenever rendering needs a read (`prepare`)."""
        if not self.connections:
            return False
        if not target.startswith(USER_PREFIX):
            return True
        conns = self.by_user.get(target[len(USER_PREFIX) :])
        if not conns:
            return False
        origin = event.get("origin")
        if origin is None or len(conns) != 1 or origin not in conns:
            return True
        if event.get("joins") or event.get("leaves"):  # routing of that connection changes
            return True
        if self.prepares:
            return True
        emits = self.protocol.render(event)
        return any(
            origin not in delivery.skip for _emit, delivery in deliveries(target, event, emits, self.local)
        )

    def _out_of_scope(self, target: str, scope: str) -> frozenset[str]:
        """Local connections routed for `target` that the protocol keeps out of `scope`. Walks
        this hub's connections: only protocols that scope their emits pay for it."""
        return frozenset(
            conn_id
            for conn_id, conn in self.connections.items()
            if target in conn.groups and not self.protocol.in_scope(conn, scope)
        )

    async def resync(self) -> None:
        """Called by the bridge when the bus failed or came back: each local connection gets the
        protocol's resync events."""
        for conn_id, conn in list(self.connections.items()):
            await self._send_all(conn_id, self.protocol.resync(conn))

    async def _route(
        self, user_id: str, group: str, *, join: bool, only: str | None = None, since: int | None = None
    ) -> None:
        """Add or drop every local connection of a user (or just `only`) to or from a
        conversation's routing, holding or releasing the process's bus subscription.

        `since` (a membership event's `seq`: the conversation's last message before the
        membership): a connection added is caught up. What the conversation received after that
        point and before the subscription was in place went past this process (or past this
        connection, which was not routed yet), so once it is in place the connection is sent
        the messages after `since` from the database, then whatever the bus brought for the
        conversation meanwhile, which was held back from it (`_catch_up`)."""
        if isinstance(since, bool) or not isinstance(since, int):  # none, or not a seq: as before
            since = None
        for conn_id in [only] if only else list(self.by_user.get(user_id, ())):
            conn = self.connections.get(conn_id)
            if conn is None:
                continue
            if join and group not in conn.groups:
                conn.groups.append(group)
                if since is not None:  # held back from here on: nothing live overtakes the catch-up
                    self.catching.setdefault(group, {})[conn_id] = Catching(since)
                try:
                    await self.transport.join_local(conn_id, [group])
                    await bridge.subscribe([group])
                except BaseException:
                    self._release(group, conn_id)
                    raise
                if since is not None:
                    self.starting.append((conn, group, since))
            elif not join and group in conn.groups:
                self._release(group, conn_id)  # what was held back goes: it is no longer theirs
                conn.groups.remove(group)
                await self.transport.leave_local(conn_id, [group])
                await bridge.unsubscribe([group])

    def _hold(self, target: str, event: dict[str, Any]) -> frozenset[str] | None:
        """The connections `deliver` skips for a bus event of a conversation: those being caught
        up (the event is kept for them, `_catch_up` sends it), and those caught up lately when
        the event is a message their catch-up covered (a late live copy). None: nobody."""
        catching = self.catching.get(target)
        if not catching:
            return None
        seq = _message_seq(event)
        skip = []
        for conn_id, catch in catching.items():
            if catch.pending is not None:
                catch.pending.append(event)
                skip.append(conn_id)
            elif seq is not None and seq <= catch.through:
                skip.append(conn_id)
        return frozenset(skip)

    def _release(self, group: str, conn_id: str, catch: Catching | None = None) -> None:
        """Forget a connection's catch-up for a group (only `catch`, when given: not a later one)."""
        catching = self.catching.get(group)
        if catching is None or (catch is not None and catching.get(conn_id) is not catch):
            return
        catching.pop(conn_id, None)
        if not catching:
            del self.catching[group]

    def _start_catch_ups(self) -> None:
        """Start the catch-ups `_route` set up, once the membership event that added the routing
        was rendered: the client learns of the conversation before it gets its messages."""
        starting, self.starting = self.starting, []
        for conn, group, since in starting:
            spawn(self._catch_up(conn, group, since))

    async def _catch_up(self, conn: Connection, group: str, since: int) -> None:
        """Send a connection just routed to a conversation (the process's subscription now in
        place) every message after `since` it may read, and the conversation's bus events held
        back from it meanwhile, through the protocol like any live event.

        Exactly once and in seq order. The messages read (`messages_since`, up to `through`)
        and the held events are merged: a read message whose live copy was held goes where that
        copy arrived (the copy itself is dropped, as is the copy of any message up to `through`
        the read left out: from before the membership, hidden or deleted since); the others,
        published before the subscription, go before it, in seq order. Once nothing is held any
        more (no wait in between) the connection gets the conversation's events live again,
        except, for CATCH_UP_WINDOW_SECONDS, late copies of messages up to `through`.

        Ends early when the connection leaves the routing (removed, gone): what was held back
        goes with it, and the rest is in history. More than CATCH_UP_READS reads' worth of
        messages, or a failed read: the connection is told to resync, as after a bus outage."""
        conn_id = conn.id
        catch = (self.catching.get(group) or {}).get(conn_id)
        if catch is None or catch.pending is None:  # left the routing before it began
            return
        pending = catch.pending
        read: deque[dict[str, Any]] = deque()
        through = since
        try:
            try:
                for _ in range(CATCH_UP_READS):
                    found = await call_read(
                        messages_since,
                        user=conn.user,
                        conversation_id=group[len(CONVERSATION_PREFIX) :],
                        after=through,
                    )
                    read.extend(
                        msg_events.message_created(
                            conversation=found.conversation, message=m, sender=m.sender
                        )
                        for m in found.messages
                    )
                    through = found.through
                    if not found.more:
                        break
                else:
                    await self._send_all(conn_id, self.protocol.resync(conn))
            except ApplicationError:  # not a member any more (removed, the group deleted)
                pass
            except Exception:
                logger.exception("catch-up read failed: conn=%s group=%s", conn_id, group)
                await self._send_all(conn_id, self.protocol.resync(conn))
            catch.through = through
            copies = [seq for seq in map(_message_seq, pending) if seq is not None and seq <= through]
            await self._send_read(conn, group, catch, read, min(copies) - 1 if copies else through)
            while self._still_catching(conn, group, catch) and (pending or read):
                if not pending:
                    await self._send_read(conn, group, catch, read, through)
                    continue
                event = pending.pop(0)
                seq = _message_seq(event)
                if seq is not None and seq <= through:  # its place: the read's copy goes there
                    await self._send_read(conn, group, catch, read, seq)
                    continue
                await self._send_read(conn, group, catch, read, through if seq is not None else -1)
                await self._deliver_to(conn, group, event)
        except Exception:
            logger.exception("catch-up failed: conn=%s group=%s", conn_id, group)
        # Nothing awaited since `pending` was found empty: live from the next event on.
        if (self.catching.get(group) or {}).get(conn_id) is catch:
            catch.pending = None
            asyncio.get_running_loop().call_later(
                CATCH_UP_WINDOW_SECONDS, self._release, group, conn_id, catch
            )

    async def _send_read(
        self, conn: Connection, group: str, catch: Catching, read: deque[dict[str, Any]], upto: int
    ) -> None:
        """Send the messages read, in seq order, up to seq `upto`, while the catch-up holds."""
        while read and read[0]["message"]["seq"] <= upto and self._still_catching(conn, group, catch):
            await self._deliver_to(conn, group, read.popleft())

    def _still_catching(self, conn: Connection, group: str, catch: Catching) -> bool:
        """Whether this catch-up still holds the connection's routing to `group` (not removed,
        not re-added since, the connection not gone)."""
        return (
            self.connections.get(conn.id) is conn and (self.catching.get(group) or {}).get(conn.id) is catch
        )

    async def _deliver_to(self, conn: Connection, target: str, event: dict[str, Any]) -> None:
        """`deliver`'s rendering of one bus event of `target`, to one connection only."""
        prepared = event
        if self.prepares:
            try:
                prepared = await self.protocol.prepare(event)
            except Exception:
                logger.exception("prepare failed: protocol=%s type=%s", self.protocol.name, event.get("type"))
        for emit, delivery in deliveries(target, event, self.protocol.render(prepared), self.local):
            if conn.id in delivery.skip or (delivery.only is not None and conn.id not in delivery.only):
                continue
            if emit.scope is not None and not self.protocol.in_scope(conn, emit.scope):
                continue
            await self.transport.send(conn.id, emit.name, emit.payload)
            metrics.delivery(self.protocol.name, self.transport.name, 1)

    def _settings_changed(self, event: dict[str, Any]) -> None:
        """A user changed their privacy settings: apply them to their local connections (the
        receipt filter reads them) and let presence recompute what others see."""
        user_id = event.get("user_id") or ""
        conn_ids = self.by_user.get(user_id)
        if not conn_ids:
            return
        for conn_id in conn_ids:
            user = self.connections[conn_id].user
            user.presence_hidden = bool(event.get("presence_hidden"))
            user.read_receipts_enabled = bool(event.get("read_receipts_enabled"))
        self._note_settings(user_id, bool(event.get("read_receipts_enabled")))
        presence.tracker.changed(user_id)

    async def _revoke(self, event: dict[str, Any]) -> None:
        user_id, sid, app_id = event.get("user_id"), event.get("sid"), event.get("app_id")
        if app_id is not None:  # every connection of the app's users
            victims = [conn_id for conn_id, conn in self.connections.items() if conn.realm == app_id]
        else:
            victims = [
                conn_id
                for conn_id in list(self.by_user.get(user_id, ()))
                if sid is None or self.connections[conn_id].session_id == sid
            ]
        for emit in self.protocol.render(event):
            for conn_id in victims:
                await self.transport.send(conn_id, emit.name, emit.payload)
        for conn_id in victims:
            await self.transport.close(conn_id)
            await self.forget(conn_id)
