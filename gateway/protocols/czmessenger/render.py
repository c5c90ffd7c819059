"""CZ Messenger's outbound half: a prepared domain event -> CZ Messenger events with their
audience. Pure functions of the event; `CzMessenger.prepare` adds what the core's events do not
carry: `czm_room` (the room of the event's conversation: `room_id`, `buyer_id`/`seller_id`
public ids, `buyer`/`seller` wire ids), `czm_image` (a text message sent as an IMAGE link), `czm_seen` (`id`, `created_at` of the message a read
pointer stops at) and `czm_rooms` (the rooms of a user whose presence changed)."""

from collections.abc import Callable
from typing import Any

from gateway.audience import ACTOR, Emit

from . import wire
from .state import BUYER, SELLER


def _parties(room: dict[str, Any], actor: str | None) -> tuple[str, str] | None:
    """(actor's wire id, the other party's wire id), or None if the actor is not a party."""
    if actor == room["buyer_id"]:
        return room["buyer"], room["seller"]
    if actor == room["seller_id"]:
        return room["seller"], room["buyer"]
    return None


def _render_message(event: dict[str, Any]) -> list[Emit]:
    room, message = event.get("czm_room"), event["message"]
    if room is None or message.get("kind") == "system":
        return []
    parties = _parties(room, message.get("sender_id"))
    if parties is None:
        return []
    payload = wire.new_message(
        room_id=room["room_id"],
        sender=parties[0],
        recipient=parties[1],
        kind="image" if event.get("czm_image") else message.get("kind", "text"),
        content=(message.get("attachment") or {}).get("url") or message["content"],
        client_message_id=message.get("client_message_id"),
        message_id=message["id"],
        created_at=message["created_at"],
    )
    # Both parties, every socket; the sending socket has its copy already (the handler's echo).
    return [Emit("new_message", payload, skip_origin=True)]


def _render_typing(event: dict[str, Any]) -> list[Emit]:
    room = event.get("czm_room")
    parties = _parties(room, event.get("actor")) if room else None
    if parties is None:
        return []
    name = "typing" if event["type"] == "typing.started" else "stop_typing"
    payload = {"room_id": room["room_id"], "from": parties[0], "to": parties[1]}
    return [Emit(name, payload, skip=(ACTOR,))]


def _render_read(event: dict[str, Any]) -> list[Emit]:
    room, seen = event.get("czm_room"), event.get("czm_seen")
    parties = _parties(room, event.get("actor")) if room else None
    if parties is None or seen is None:
        return []
    payload = {
        "room_id": room["room_id"],
        "from": parties[0],
        "to": parties[1],
        "last_message_id": seen["id"],
        "last_message_created_at": seen["created_at"],
        "message_ids": [seen["id"]],  # the older clients' form: the newest message read
    }
    return [Emit("seen_messages", payload, skip=(ACTOR,), receipt=True)]


def _render_presence(event: dict[str, Any]) -> list[Emit]:
    """First socket of a user (online) or last one gone (offline): the counterpart of each of
    the user's rooms is told, each with that room's id."""
    user_id = event["user_id"]
    online = event.get("state") != "offline"
    emits = []
    for room in event.get("czm_rooms") or ():
        if user_id == room["buyer_id"]:
            me, role, other = room["buyer"], BUYER, room["seller_id"]
        elif user_id == room["seller_id"]:
            me, role, other = room["seller"], SELLER, room["buyer_id"]
        else:
            continue
        payload = wire.status_change(user_id=me, role=role, room_id=room["room_id"], online=online)
        emits.append(Emit("user_status_change", payload, user=other))
    return emits


def _render_room_deleted(event: dict[str, Any]) -> list[Emit]:
    keys = ("room_id", "seller", "buyer", "deletion_role")
    return [Emit("room_deletion", {k: event[k] for k in keys})]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[Emit]]] = {
    "message.created": _render_message,
    "typing.started": _render_typing,
    "typing.stopped": _render_typing,
    "conversation.read": _render_read,
    "presence.changed": _render_presence,
    "czmessenger.room_deleted": _render_room_deleted,
}


def render(event: dict[str, Any]) -> list[Emit]:
    """The CZ Messenger events a prepared domain event becomes, each with its audience."""
    renderer = RENDERERS.get(event.get("type"))
    return renderer(event) if renderer else []
