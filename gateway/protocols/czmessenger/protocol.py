"""The CZ Messenger `Protocol` object."""

from dataclasses import asdict
from typing import Any

from chatproject.core.errors import ApplicationError
from chatproject.core.timefmt import iso_ms
from gateway import actions
from gateway.audience import Emit
from gateway.auth import Credentials
from gateway.connection import Connection
from gateway.protocol import EventsOnly, Refusal
from gateway.transports.handshake import Handshake

from . import directory, wire
from .handlers import HANDLERS, me
from .render import render
from .state import BUYER, CzState, role_of
from .store import selectors as rooms

AUTHENTICATION_ERROR = "Authentication Error"  # what a 2.x client's `error` handler receives
# Events about one room: `prepare` adds the room.
ROOM_EVENTS = ("message.created", "typing.started", "typing.stopped", "conversation.read")


class CzMessenger(EventsOnly):
    name = "czmessenger"
    connect_first = False  # refusals are the namespace ERROR packet, before any CONNECT
    handlers = HANDLERS
    # A send: checked, `actions.send`, answered with its echo (gateway/lanes.py).
    pipelined = frozenset({"new_message"})
    urls = "gateway.protocols.czmessenger.urls"

    def credentials(self, handshake: Handshake) -> Credentials:
        """The handshake query's `token` (a tenant-signed JWT, or the product's access token on
        a first-party mount) and `user_id`, which must be the token's identity."""
        token, claimed = handshake.query.get("token"), handshake.query.get("user_id")
        return Credentials(token or None, None, renewable=False, claimed_id=claimed or None)

    def new_state(self, handshake: Handshake) -> CzState:
        return CzState(role=role_of(handshake.query.get("user_role")))

    def refusal(self, error: ApplicationError) -> Refusal:
        return Refusal(connect_error=AUTHENTICATION_ERROR)

    async def welcome(self, conn: Connection) -> list[tuple[str, Any]]:
        """`active_user_list`: the caller's rooms on its side and whether each counterpart is
        online; always sent (`rooms: []` when there are none; the original then sent nothing)."""
        state: CzState = conn.state
        side = rooms.Side.BUYER if state.role == BUYER else rooms.Side.SELLER
        visible = await actions.call(rooms.rooms_visible, user=conn.user, side=side)
        infos = [rooms.room_info(r) for r in visible]
        for info in infos:
            directory.remember(info)
        others = [i.seller_id if state.role == BUYER else i.buyer_id for i in infos]
        online = (
            {p.user_id for p in await actions.presence_fetch(conn, others) if p.online} if others else set()
        )
        listed = [(i.room_id, other in online) for i, other in zip(infos, others, strict=True)]
        return [("active_user_list", wire.active_user_list(user_id=me(conn), role=state.role, rooms=listed))]

    async def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        kind = event.get("type")
        if kind == "presence.changed":
            infos = await directory.rooms_of_user(event["user_id"])
            return event | {"czm_rooms": [asdict(i) for i in infos]}
        info = await directory.rooms.room_of_event(event, ROOM_EVENTS)
        if info is None:
            return event
        prepared = event | {"czm_room": asdict(info)}
        message = event.get("message") or {}
        if (
            kind == "message.created"
            and message.get("kind") == "text"
            and rooms.looks_like_image_link(
                content=message.get("content"), client_message_id=message.get("client_message_id")
            )
        ):
            # Only text messages that are a bare URL with a client id pay this read.
            prepared["czm_image"] = await actions.call(
                rooms.image_link_is,
                conversation_id=info.conversation_id,
                sender_id=message.get("sender_id"),
                client_message_id=message["client_message_id"],
            )
        if kind == "conversation.read" and event.get("seq"):
            found = await actions.call(
                rooms.message_at_seq, conversation_id=info.conversation_id, seq=event["seq"]
            )
            if found is not None:
                prepared["czm_seen"] = {"id": found[0], "created_at": iso_ms(found[1])}
        return prepared

    def render(self, event: dict[str, Any]) -> list[Emit]:
        return render(event)


PROTOCOL = CzMessenger()
