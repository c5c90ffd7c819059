"""The room-token (seed 002) `Protocol` object."""

from dataclasses import asdict
from typing import Any

from chatproject.core.errors import ApplicationError, ErrorCode
from gateway import actions
from gateway.auth import Credentials
from gateway.connection import Connection
from gateway.protocol import EventsOnly, Refusal
from gateway.transports.handshake import Handshake

from . import directory, selves, wire
from .handlers import HANDLERS
from .render import render
from .state import RoomTokenState
from .store import selectors as rooms

# Events about one room: `prepare` adds the room and the local views of its parties.
ROOM_EVENTS = (
    "message.created",
    "typing.started",
    "chat_request.created",
    "chat_request.accepted",
    "conversation.member_left",
)


def presented_id(query: dict[str, str]) -> str | None:
    """The handshake's own id: `userId` (the code), or the README's `customerID`, `vendorID`."""
    for key in ("userId", "customerID", "vendorID"):
        if query.get(key):
            return query[key]
    return None


class RoomToken(EventsOnly):
    name = "roomtoken"
    handlers = HANDLERS
    urls = "gateway.protocols.roomtoken.urls"

    def credentials(self, handshake: Handshake) -> Credentials:
        """A tenant-signed JWT in `token` (clients that can be updated), else the `userId` (or
        `customerID`, `vendorID`) as an id handle the marketplace backend obtained."""
        token = handshake.query.get("token")
        if token:
            return Credentials(token, None, renewable=False)
        return Credentials(None, None, renewable=False, handle=presented_id(handshake.query))

    def new_state(self, handshake: Handshake) -> RoomTokenState:
        state = RoomTokenState(namespace=handshake.namespace.strip("/"))
        if not handshake.query.get("token"):
            state.self_id = presented_id(handshake.query) or ""
        return state

    def refusal(self, error: ApplicationError) -> Refusal:
        """The original's refusal: connect, `AUTH_FAILED`, disconnect."""
        missing = error.code == ErrorCode.NOT_AUTHENTICATED
        return Refusal(emits=[(wire.AUTH_FAILED, wire.USER_ID_REQUIRED if missing else wire.USER_ID_INVALID)])

    async def welcome(self, conn: Connection) -> list[tuple[str, Any]]:
        """`private` list-room (the caller's rooms in this namespace, requests waiting for it
        included, rooms it left or whose request was declined not) and list-online-user (the caller, and the other parties of
        its rooms neither of them left who are online: never everyone, spec §8.5)."""
        state: RoomTokenState = conn.state
        state.self_id = state.self_id or conn.user.external_id or conn.user_id
        state.tag = selves.tag_of(state.self_id)
        selves.add(conn.user_id, state)
        mine = await actions.call(rooms.rooms_of_user, user=conn.user, namespace=state.namespace)
        infos = [rooms.room_info(r) for r in mine]
        shown: dict[str, str] = {conn.user_id: state.self_id}
        for info in infos:
            directory.remember(info)
            shown.setdefault(info.customer_id, info.customer)
            shown.setdefault(info.vendor_id, info.vendor)
        docs = [wire.room_doc(asdict(i), shown.__getitem__) for i in infos]
        # Presence is shared through rooms neither party left (`room_infos_of_user`), so the
        # list shows exactly the users whose `online` / `offline` this socket will hear.
        others = sorted(
            {
                o
                for r, i in zip(mine, infos, strict=True)
                if not r.someone_left and (o := i.other(conn.user_id))
            }
        )
        online = []
        if others:
            found = await actions.presence_fetch(conn, others)
            online = [shown[p.user_id] for p in found if p.online and p.user_id in shown]
        return [
            ("private", wire.list_room(docs)),
            ("private", wire.list_online_user([state.self_id, *online])),
        ]

    async def goodbye(self, conn: Connection) -> None:
        selves.remove(conn.user_id, conn.state)

    async def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        kind = event.get("type")
        if kind == "presence.changed":
            infos = await directory.rooms_of_user(event["user_id"])
            return event | {"rt_rooms": [asdict(i) for i in infos]}
        info = await directory.rooms.room_of_event(event, ROOM_EVENTS)
        if info is None:
            return event
        return event | {
            "rt_room": asdict(info),
            "rt_views": selves.views_of([info.customer_id, info.vendor_id]),
        }

    def render(self, event: dict[str, Any]) -> list:
        return render(event)

    def in_scope(self, conn: Connection, scope: str) -> bool:
        """`render.scope`: the namespace, the view."""
        state: RoomTokenState = conn.state
        namespace, tag = scope.split("|")
        return state.namespace == namespace and (not tag or tag == state.tag)


PROTOCOL = RoomToken()
