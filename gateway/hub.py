"""The life of a connection, the same for every transport.

A hub authenticates a new connection, subscribes the process to its user's bus group, sends
the protocol's greeting, runs each client event through rate limits and the protocol's handler,
renders bus events into the protocol for its local connections, and ends connections whose token
expired or whose session was revoked. Subclasses only say how to send to one connection, how to
fan out to local connections, and how to close one.

Presence and receipts hook in here: a greeted connection is reported to the presence tracker and
a forgotten one removed from it; receipt events skip users who turned read receipts off.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from accounts.tokens import access_decode, user_for_claims
from chatproject.bus.groups import USER_PREFIX, conversation_group, user_group
from chatproject.core.errors import ApplicationError, ErrorCode

from . import presence
from .auth import Credentials, connection_authenticate, connection_renew, connection_snapshot
from .bridge import bridge
from .connection import Connection, TokenBucket
from .protocols import expresschat as protocol
from .sync import call

logger = logging.getLogger(__name__)

# Transport-level events, shared by every protocol.
AUTH_EVENT = "auth"  # in-band token refresh: {"token": <access>}
ERROR_EVENT = "error"
ACCESS_TOKEN_EVENT = "access-token"


def ack_ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def ack_error(error: ApplicationError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": str(error.code), "message": error.message, "extra": error.extra}}


class Hub:
    transport = "base"

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.by_user: dict[str, set[str]] = defaultdict(set)
        self.user_buckets: dict[str, TokenBucket] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        # Users with local connections who turned read receipts off: receipt events (Emit.receipt)
        # skip them. Kept from the handshake's user row and `user.settings_changed` events.
        self.receipts_off: set[str] = set()
        self.stats = {"events": 0, "errors": 0, "rate_limited": 0}
        bridge.add_sink(self)

    # --- to be provided by the transport ----------------------------------------------------

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        raise NotImplementedError

    async def fanout(
        self, target: str, name: str, payload: Any, *, only: set[str] | None, skip: set[str]
    ) -> None:
        """Send to every local connection in `target` (a bus group), restricted to `only` when
        given, minus `skip`."""
        raise NotImplementedError

    async def close(self, conn_id: str) -> None:
        raise NotImplementedError

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        """Put a connection into local routing for these bus groups."""
        raise NotImplementedError

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        """Take a connection out of local routing for these bus groups."""
        raise NotImplementedError

    def is_open(self, conn_id: str) -> bool:
        raise NotImplementedError

    # --- connection lifecycle ---------------------------------------------------------------

    async def refuse(self, conn_id: str, code: str) -> None:
        """The ExpressChat failure sequence: auth-failure, then a server disconnect."""
        await self.send(conn_id, protocol.AUTH_FAILURE, protocol.auth_failure_payload(code))
        await self.close(conn_id)

    async def open(self, conn_id: str, credentials: Credentials) -> Connection | None:
        """Called when a transport accepted a new connection: authenticate and greet it."""
        try:
            authed = await call(connection_authenticate, credentials=credentials)
        except ApplicationError as error:
            await self.refuse(conn_id, str(error.code))
            return None
        except Exception:
            logger.exception("handshake failed: conn=%s", conn_id)
            await self.refuse(conn_id, str(ErrorCode.INTERNAL))
            return None
        conn = Connection(
            id=conn_id,
            user=authed.user,
            session_id=authed.session_id,
            expires_at=authed.expires_at,
            transport=self.transport,
            refresh_token=authed.refresh_token,
            bucket=TokenBucket(settings.CHAT["SOCKET_RATE_BURST"], settings.CHAT["SOCKET_RATE_PER_SECOND"]),
        )
        self.connections[conn_id] = conn
        self.by_user[conn.user_id].add(conn_id)
        self._note_settings(conn.user_id, conn.user.read_receipts_enabled)
        # Subscribe before checking or reading anything: a logout, ban or membership change that
        # commits after this point reaches us through the bus; whatever committed before is
        # seen by the checks and reads below.
        user_room = user_group(conn.user_id)
        conn.extra["groups"] = [user_room]
        await self.join_local(conn_id, [user_room])
        try:
            await bridge.subscribe([user_room])
            snapshot = await call(connection_snapshot, user=conn.user, session_id=conn.session_id)
        except ApplicationError as error:
            await self.refuse(conn_id, str(error.code))
            await self.forget(conn_id)
            return None
        except Exception:  # the bus or the database is unreachable: tell the client, don't hang
            logger.exception("handshake failed after authentication: conn=%s", conn_id)
            await self.refuse(conn_id, str(ErrorCode.INTERNAL))
            await self.forget(conn_id)
            return None
        if conn_id not in self.connections:  # revoked (or gone) while we were reading
            return None
        for conversation_id in snapshot.group_ids:
            await self._route(conn.user_id, conversation_group(conversation_id), join=True, only=conn_id)
        if authed.new_access:
            await self.send(conn_id, ACCESS_TOKEN_EVENT, {"accessToken": authed.new_access})
        for name, payload in protocol.on_connect(conn, snapshot.summaries):
            await self.send(conn_id, name, payload)
        self._schedule_expiry(conn)
        if not self.is_open(conn_id):  # the client left while we were greeting it
            await self.forget(conn_id)
            return None
        # Presence hook: only a connection that made it through the greeting counts as online.
        await self._presence(presence.tracker.connected, conn)
        return conn

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
        conn = self.connections.pop(conn_id, None)
        timer = self.timers.pop(conn_id, None)
        if timer is not None:
            timer.cancel()
        if conn is None:
            return
        sids = self.by_user.get(conn.user_id)
        if sids is not None:
            sids.discard(conn_id)
            if not sids:
                del self.by_user[conn.user_id]
                self.user_buckets.pop(conn.user_id, None)
                self.receipts_off.discard(conn.user_id)
        await bridge.unsubscribe(conn.extra.get("groups", []))
        await self._presence(presence.tracker.disconnected, conn)  # presence hook

    # --- client events ----------------------------------------------------------------------

    def _allowed(self, conn: Connection) -> bool:
        user_bucket = self.user_buckets.get(conn.user_id)
        if user_bucket is None:
            user_bucket = self.user_buckets[conn.user_id] = TokenBucket(
                settings.CHAT["USER_RATE_BURST"], settings.CHAT["USER_RATE_PER_SECOND"]
            )
        return conn.bucket.take() and user_bucket.take()

    async def handle(self, conn_id: str, event: str, data: Any) -> dict[str, Any] | None:
        """Called for every client event. Returns the ack; errors are also sent as `error`."""
        conn = self.connections.get(conn_id)
        if conn is None:
            # Ended (logout, ban, expiry) while this event was in flight: say so, rather than
            # leave the client waiting for an ack until its timeout. Nothing was done.
            return ack_error(
                ApplicationError(ErrorCode.NOT_AUTHENTICATED, "The connection has ended; reconnect.")
            )
        self.stats["events"] += 1
        try:
            if not self._allowed(conn):
                self.stats["rate_limited"] += 1
                raise ApplicationError(ErrorCode.RATE_LIMITED, "Too many events; slow down.")
            if event == AUTH_EVENT:
                return ack_ok(await self._reauthenticate(conn, data))
            handler = protocol.HANDLERS.get(event)
            if handler is None:
                raise ApplicationError(ErrorCode.INVALID, "Unknown event.", {"event": str(event)[:64]})
            outcome = await handler(conn, protocol.payload_dict(data))
        except ApplicationError as error:
            self.stats["errors"] += 1
            await self.send(conn_id, ERROR_EVENT, protocol.error_payload(error, str(event)[:64]))
            return ack_error(error)
        except Exception:
            self.stats["errors"] += 1
            logger.exception("handler failed: event=%s user=%s", str(event)[:64], conn.user_id)
            error = ApplicationError(ErrorCode.INTERNAL, "Internal error.")
            await self.send(conn_id, ERROR_EVENT, protocol.error_payload(error, str(event)[:64]))
            return ack_error(error)
        for name, payload in outcome.emits:
            await self.send(conn_id, name, payload)
        if outcome.error is not None:  # refused, with the protocol's own failure event sent above
            self.stats["errors"] += 1
            return ack_error(outcome.error)
        return ack_ok(outcome.data)

    async def _reauthenticate(self, conn: Connection, data: Any) -> dict[str, Any]:
        """In-band token refresh: a new access token of the same user extends the connection."""
        token = data.get("token") if isinstance(data, dict) else None
        claims = access_decode(token)
        user = await call(user_for_claims, claims=claims)
        if user.public_id != conn.user_id:
            raise ApplicationError(ErrorCode.PERMISSION_DENIED, "The token belongs to another user.")
        if claims.sid != conn.session_id:
            conn.refresh_token = None  # it belongs to the old session and could not renew this one
        conn.user, conn.session_id, conn.expires_at = user, claims.sid, claims.expires_at
        self._note_settings(user.public_id, user.read_receipts_enabled)
        self._schedule_expiry(conn)
        return {"expires_at": claims.expires_at}

    # --- token expiry -----------------------------------------------------------------------

    def _schedule_expiry(self, conn: Connection) -> None:
        old = self.timers.pop(conn.id, None)
        if old is not None:
            old.cancel()
        delay = max(conn.expires_at - time.time(), 0)
        loop = asyncio.get_running_loop()
        self.timers[conn.id] = loop.call_later(delay, lambda: loop.create_task(self._expired(conn.id)))

    async def _expired(self, conn_id: str) -> None:
        """At the access token's expiry: renew it for ExpressChat connections that hold a refresh
        token of a live session (pushing `access-token`), else end the connection."""
        conn = self.connections.get(conn_id)
        if conn is None:
            return
        try:
            access, expires_at = await call(
                connection_renew, user=conn.user, session_id=conn.session_id, refresh=conn.refresh_token
            )
        except ApplicationError as error:
            code = ErrorCode.TOKEN_EXPIRED if error.code == ErrorCode.TOKEN_EXPIRED else error.code
            await self.refuse(conn_id, str(code))
            await self.forget(conn_id)
            return
        conn.expires_at = expires_at
        await self.send(conn_id, ACCESS_TOKEN_EVENT, {"accessToken": access})
        self._schedule_expiry(conn)

    # --- bus events -------------------------------------------------------------------------

    async def deliver(self, target: str, event: dict[str, Any]) -> None:
        """Called by the bridge for each bus event: apply membership changes to local routing,
        render the event, and send it to the local connections it concerns."""
        if event.get("type") == "session.revoked":
            await self._revoke(event)
            return
        if event.get("type") == "user.settings_changed":
            self._settings_changed(event)
            return
        conversation_id = (event.get("conversation") or {}).get("id")
        room = conversation_group(conversation_id) if conversation_id else None
        roles = {protocol.ACTOR: event.get("actor"), protocol.SUBJECT: event.get("subject")}
        if target.startswith(USER_PREFIX):
            recipient = target[len(USER_PREFIX) :]
            if room and recipient in event.get("joins", ()):
                await self._route(recipient, room, join=True)
            held = {role for role, who in roles.items() if who and who == recipient}
            receipts_off = recipient in self.receipts_off
            origin = {event["origin"]} if event.get("origin") else set()
            for emit in protocol.render(event):
                if emit.receipt and receipts_off:
                    continue
                if (emit.to == protocol.ALL or emit.to in held) and not held.intersection(emit.skip):
                    skip = origin if emit.skip_origin else set()
                    await self.fanout(target, emit.name, emit.payload, only=None, skip=skip)
            if room and recipient in event.get("leaves", ()):
                await self._route(recipient, room, join=False)
            return
        for emit in protocol.render(event):
            only = None if emit.to == protocol.ALL else set(self.by_user.get(roles[emit.to] or "", ()))
            skip: set[str] = set()
            for role in emit.skip:
                skip |= self.by_user.get(roles[role] or "", set())
            if emit.receipt:
                for user_id in self.receipts_off:
                    skip |= self.by_user.get(user_id, set())
            if emit.skip_origin and event.get("origin"):
                skip.add(event["origin"])
            await self.fanout(target, emit.name, emit.payload, only=only, skip=skip)
        for user_id in event.get("leaves", ()):
            await self._route(user_id, target, join=False)
        if event.get("leaves_all"):
            for user_id in list(self.by_user):
                await self._route(user_id, target, join=False)

    async def _route(self, user_id: str, group: str, *, join: bool, only: str | None = None) -> None:
        """Add or drop every local connection of a user (or just `only`) to or from a
        conversation's routing, holding or releasing the process's bus subscription."""
        for conn_id in [only] if only else list(self.by_user.get(user_id, ())):
            conn = self.connections.get(conn_id)
            if conn is None:
                continue
            groups = conn.extra.setdefault("groups", [])
            if join and group not in groups:
                groups.append(group)
                await self.join_local(conn_id, [group])
                await bridge.subscribe([group])
            elif not join and group in groups:
                groups.remove(group)
                await self.leave_local(conn_id, [group])
                await bridge.unsubscribe([group])

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
        user_id, sid = event.get("user_id"), event.get("sid")
        victims = [
            conn_id
            for conn_id in list(self.by_user.get(user_id, ()))
            if sid is None or self.connections[conn_id].session_id == sid
        ]
        for emit in protocol.render(event):
            for conn_id in victims:
                await self.send(conn_id, emit.name, emit.payload)
        for conn_id in victims:
            await self.close(conn_id)
            await self.forget(conn_id)
