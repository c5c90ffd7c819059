"""The Channels WebSocket consumer at /ws/: a protocol's events as JSON frames.

Client -> server: `{"event": "<name>", "data": {...}, "ack": <id>}` (ack optional).
Server -> client: `{"event": "<name>", "data": {...}}`, and for a frame that carried an ack id,
`{"event": "ack", "ack": <id>, "data": <the first ack argument>}`.

Consumers are not channel-layer members themselves: the process bridge holds the one
subscription and the hub routes bus events to local consumers through this transport.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from gateway.auth import query_dict

from .handshake import Handshake

if TYPE_CHECKING:
    from gateway.hub import Hub

logger = logging.getLogger(__name__)
CLOSE_POLICY = 4401
# Close codes of the drain (RFC 6455 registry): "service restart", reconnect; "try again later"
# for a connection refused while draining.
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
NAME = "ws"


class WsTransport:
    """The six-method contract over the /ws/ consumers of one mount."""

    name = NAME

    def __init__(self) -> None:
        self.consumers: dict[str, ChatConsumer] = {}
        self.members: dict[str, set[str]] = defaultdict(set)  # bus group -> local conn ids

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        consumer = self.consumers.get(conn_id)
        if consumer is not None:
            await consumer.send_frame(json.dumps({"event": name, "data": payload}))

    async def fanout(
        self, target: str, name: str, payload: Any, *, only: frozenset[str] | None, skip: frozenset[str]
    ) -> int:
        frame, sent = None, 0
        for conn_id in list(self.members.get(target, ())):
            if conn_id in skip or (only is not None and conn_id not in only):
                continue
            consumer = self.consumers.get(conn_id)
            if consumer is None:
                continue
            frame = frame or json.dumps({"event": name, "data": payload})  # encoded once
            await consumer.send_frame(frame)
            sent += 1
        return sent

    async def close(self, conn_id: str, *, reconnect: bool = False) -> None:
        consumer = self.consumers.get(conn_id)
        if consumer is not None:
            await consumer.close(code=CLOSE_SERVICE_RESTART if reconnect else CLOSE_POLICY)

    async def join_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            self.members[group].add(conn_id)

    async def leave_local(self, conn_id: str, groups: list[str]) -> None:
        for group in groups:
            members = self.members.get(group)
            if members is not None:
                members.discard(conn_id)
                if not members:
                    del self.members[group]

    def is_open(self, conn_id: str) -> bool:
        return conn_id in self.consumers


def origin_allowed(headers: dict[str, str], scheme: str = "ws") -> bool:
    """Browsers send Origin; it must be this site (same host and the matching scheme: an
    http:// page may not open a socket of an https:// site) or a configured origin. Non-browser
    clients send none and authenticate with a token like any API client."""
    origin = headers.get("origin")
    if not origin:
        return True
    if origin in settings.CORS_ALLOWED_ORIGINS or origin in settings.CHAT["SOCKET_CORS_ALLOWED_ORIGINS"]:
        return True
    parts = urlsplit(origin)
    page_scheme = "https" if scheme == "wss" else "http"
    return parts.scheme == page_scheme and parts.netloc == headers.get("host", "")


class ChatConsumer(AsyncWebsocketConsumer):
    """One /ws/ connection of a mount (`as_asgi(hub=...)`)."""

    channel_layer_alias = "__routed_by_the_process_bridge__"  # not a channel-layer member
    hub: Hub | None = None

    def __init__(self, *args: Any, hub: Hub, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub = hub
        self.transport: WsTransport = hub.transport

    async def connect(self) -> None:
        """Called when a client opens /ws/: accept, then authenticate like Socket.IO does."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope.get("headers", [])}
        if not origin_allowed(headers, self.scope.get("scheme", "ws")):
            await self.close(code=CLOSE_POLICY)
            return
        await self.accept()
        self.conn_id = f"ws-{new_public_id()}"
        self.transport.consumers[self.conn_id] = self
        client = self.scope.get("client")
        handshake = Handshake(
            auth=None,
            headers=headers,
            query=query_dict(self.scope.get("query_string", b"").decode("latin-1")),
            transport=NAME,
            remote=client[0] if client else None,
        )
        admission = await self.hub.connect(self.conn_id, handshake)
        if not admission.accepted:  # a plain WebSocket has no CONNECT_ERROR: close it
            await self.close(code=CLOSE_POLICY)
            return
        await self.hub.greet(self.conn_id)

    async def __call__(self, scope, receive, send) -> None:
        """The consumer's whole life: however it ends (a close from either side, or an error in
        a handler), the connection is forgotten, so no ghost stays registered for fan-out,
        presence or the expiry timer."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._forget()

    async def disconnect(self, code: int) -> None:
        """Called when the socket closed, from either side."""
        await self._forget()

    async def _forget(self) -> None:
        conn_id = getattr(self, "conn_id", None)
        if conn_id is not None and self.transport.consumers.get(conn_id) is self:
            self.transport.consumers.pop(conn_id, None)
            try:
                await self.hub.forget(conn_id)
            except Exception:
                logger.exception("forget failed: conn=%s", conn_id)

    async def send_frame(self, text: str) -> None:
        """Send one frame. A socket that is already closed is forgotten, never raised to the
        sender (a fan-out to many goes on past it)."""
        try:
            await self.send(text_data=text)
        except Exception:  # the peer is gone (the ASGI server refuses sends after a close)
            await self._forget()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for every frame: parse, run through the hub, answer the ack. Whatever one
        frame does, the connection goes on (an unexpected failure is logged and answered)."""
        try:
            try:
                event, data, ack, oversize = self._parse(text_data)
            except ApplicationError as error:
                await self.hub.refuse_event(self.conn_id, "", error)
                return
            result = await self.hub.handle(self.conn_id, event, [data], oversize=oversize)
            if ack is not None and result is not None:
                await self.send_frame(
                    json.dumps({"event": "ack", "ack": ack, "data": result[0] if result else None})
                )
        except Exception:
            logger.exception("frame failed: conn=%s", getattr(self, "conn_id", None))
            error = ApplicationError(ErrorCode.INTERNAL, "Internal error.")
            await self.hub.refuse_event(self.conn_id, "", error)

    def _parse(self, text: str | None) -> tuple[str, Any, Any, bool]:
        """(event, data, ack id, over the protocol limit). A frame over the limit (and under
        the server's WebSocket ceiling) is still parsed, so its ack can carry the refusal."""
        if text is None:
            raise ApplicationError(ErrorCode.INVALID, "Frames must be JSON text.")
        limit = settings.CHAT["SOCKET_MAX_PAYLOAD_BYTES"]
        oversize = len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit
        if len(text) > settings.CHAT["SOCKET_TRANSPORT_MAX_BYTES"]:
            raise ApplicationError(ErrorCode.PAYLOAD_TOO_LARGE, "Frame too large.")
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser's depth
            raise ApplicationError(ErrorCode.INVALID, "Malformed JSON frame.") from exc
        if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
            raise ApplicationError(
                ErrorCode.INVALID, 'A frame is {"event": <string>, "data": ..., "ack": ...}.'
            )
        ack = frame.get("ack")
        if ack is not None and (isinstance(ack, bool) or not isinstance(ack, (int, str))):
            raise ApplicationError(ErrorCode.INVALID, "ack must be an integer or a string.")
        return frame["event"], frame.get("data"), ack, oversize
