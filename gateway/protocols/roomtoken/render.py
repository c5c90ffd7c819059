"""Seed 002's outbound half: a prepared domain event -> room-token events with their audience.
Pure functions of the event; `RoomToken.prepare` adds what the core's events do not carry:
`rt_room` (the event's room, a store.selectors.RoomInfo as a dict), `rt_views` (per party of
the room, the views of its local connections: [tag, the id it calls itself], see `selves`) and
`rt_rooms` (the rooms of a user whose presence changed).

Emits are scoped `"<namespace>|<tag or empty>"` (`RoomToken.in_scope`): the namespace of the
room, and the view for payloads that name the receiving client itself. Who is in a room is the
conversation's membership: the core publishes its events to current members only, so a party
who left (`leave-room`, `conversation_leave`) gets nothing of it on any socket."""

from collections.abc import Callable, Iterator
from typing import Any

from gateway.audience import ACTOR, Emit
from messaging.models import Message

from . import wire


def scope(namespace: str, tag: str = "") -> str:
    return f"{namespace}|{tag}"


def _names(room: dict[str, Any], viewer: str, shown: str) -> wire.Names:
    ids = {room["customer_id"]: room["customer"], room["vendor_id"]: room["vendor"], viewer: shown}
    return lambda user_id: ids.get(user_id, user_id)


def _views(event: dict[str, Any], parties: tuple[str, ...]) -> Iterator[tuple[str, str, wire.Names]]:
    """(party, tag, names) for every local view of the given parties of the event's room."""
    room, views = event["rt_room"], event.get("rt_views") or {}
    for party in parties:
        for tag, shown in views.get(party, ()):
            yield party, tag, _names(room, party, shown)


def _parties(room: dict[str, Any]) -> tuple[str, str]:
    return room["customer_id"], room["vendor_id"]


def _render_message(event: dict[str, Any]) -> list[Emit]:
    room, message = event["rt_room"], event["message"]
    sender = message.get("sender_id")
    if message.get("kind") == Message.Kind.SYSTEM or sender not in _parties(room):
        return []
    receiver = room["vendor_id"] if sender == room["customer_id"] else room["customer_id"]
    attachment = message.get("attachment") or {}
    emits = []
    for party, tag, names in _views(event, _parties(room)):
        payload = wire.message(
            message_id=message["id"],
            content=attachment.get("url") or message["content"],
            kind=message.get("kind", "text"),
            client_message_id=message.get("client_message_id"),
            sender=names(sender),
            receiver=names(receiver),
            room_key=room["room_key"],
            created_at=message["created_at"],
        )
        # To the room: every socket of both parties (current members), the sender's included.
        emits.append(Emit("message", payload, user=party, scope=scope(room["namespace"], tag)))
    return emits


def _render_typing(event: dict[str, Any]) -> list[Emit]:
    room, actor = event["rt_room"], event.get("actor")
    if event["type"] != "typing.started" or actor not in _parties(room):
        return []  # the wire has no stop event: clients drop the indicator by themselves
    shown = room["customer"] if actor == room["customer_id"] else room["vendor"]
    payload = wire.typing(user=shown, room_id=room["room_id"])
    # Every socket of the other party in the room's namespace (spec §8.10: not one tab).
    return [Emit("typing", payload, skip=(ACTOR,), scope=scope(room["namespace"]))]


def _render_request(event: dict[str, Any]) -> list[Emit]:
    """A new request: `join-room` to the recipient; accepted: `accept-room` to the requester.
    Either way the event's subject, every socket in the room's namespace, each seeing itself
    by its own id in the room."""
    room = event["rt_room"]
    name = {"chat_request.created": "join-room", "chat_request.accepted": "accept-room"}.get(event["type"])
    subject = event.get("subject")
    if name is None or subject not in _parties(room):
        return []
    return [
        Emit(name, wire.joined(wire.room_doc(room, names)), user=party, scope=scope(room["namespace"], tag))
        for party, tag, names in _views(event, (subject,))
    ]


def _render_left(event: dict[str, Any]) -> list[Emit]:
    """A party left the room (`conversation.member_left`): `leave` to the room, that is every
    socket of the other party in the room's namespace (the leaver's sockets are out of it)."""
    room, actor = event["rt_room"], event.get("actor")
    if actor not in _parties(room):
        return []
    other = room["vendor_id"] if actor == room["customer_id"] else room["customer_id"]
    return [
        Emit("leave", wire.leave(user=names(actor)), user=party, scope=scope(room["namespace"], tag))
        for party, tag, names in _views(event, (other,))
    ]


def _render_presence(event: dict[str, Any]) -> list[Emit]:
    """A user's first socket (online) or last one gone (offline): `private` to the other party
    of each of their rooms, once per party and namespace."""
    user_id, online = event["user_id"], event.get("state") != "offline"
    told: set[tuple[str, str]] = set()
    emits = []
    for room in event.get("rt_rooms") or ():
        other = room["vendor_id"] if user_id == room["customer_id"] else room["customer_id"]
        if user_id not in _parties(room) or (other, room["namespace"]) in told:
            continue
        told.add((other, room["namespace"]))
        shown = room["customer"] if user_id == room["customer_id"] else room["vendor"]
        payload = wire.presence(user=shown, online=online)
        emits.append(Emit("private", payload, user=other, scope=scope(room["namespace"])))
    return emits


ROOM_RENDERERS: dict[str, Callable[[dict[str, Any]], list[Emit]]] = {
    "message.created": _render_message,
    "typing.started": _render_typing,
    "chat_request.created": _render_request,
    "chat_request.accepted": _render_request,
    "conversation.member_left": _render_left,
}


def render(event: dict[str, Any]) -> list[Emit]:
    """The room-token events a prepared domain event becomes, each with its audience."""
    kind = event.get("type")
    if kind == "presence.changed":
        return _render_presence(event)
    renderer = ROOM_RENDERERS.get(kind)
    if renderer is None or event.get("rt_room") is None:
        return []
    return renderer(event)
