"""CHAT SERVER's outbound half: a domain event -> CHAT SERVER events with their audience. Pure.

Every emit goes to the room's members, sender included (spec §8.10), and is scoped to the room:
only sockets that joined it get it (`ChatServer.in_scope`).
"""

from typing import Any

from gateway.audience import ACTOR, Emit

from .wire import (
    DELETE,
    INFO,
    IS_TYPING,
    MESSAGE,
    ROOM_DATA,
    SEEN_BY,
    message_from_event,
    room_data,
    user_payload,
)

SYSTEM = "system"


def _room(event: dict[str, Any]) -> str | None:
    return (event.get("conversation") or {}).get("id")


def render(event: dict[str, Any]) -> list[Emit]:
    kind, room = event.get("type"), _room(event)
    if room is None:
        return []
    actor = event.get("actor")
    if kind in ("message.created", "message.edited"):
        message = event.get("message") or {}
        if message.get("kind") == SYSTEM:  # group bookkeeping; the original has none
            return []
        return [Emit(MESSAGE, message_from_event(room, actor, message), scope=room)]
    if kind in ("message.deleted", "message.hidden"):
        message = event.get("message") or {}
        return [Emit(DELETE, {"id": message.get("id"), "roomId": room}, scope=room)]
    if kind in ("typing.started", "typing.stopped"):
        data = user_payload(user_id=actor, name=event.get("actor_name"))
        return [Emit(IS_TYPING, {"data": data, "typing": kind == "typing.started"}, scope=room)]
    if kind in ("room.entered", "room.left"):
        # The original: "<id> has joined!" to the others, "<id> has left" to the room; then
        # `roomData` to everyone in the room (the leaver has left it already).
        text = f"{actor} has joined!" if kind == "room.entered" else f"{actor} has left"
        online = [u for u in event.get("online") or [] if isinstance(u, str)]
        data = room_data(conversation_id=room, name=str(event.get("name") or ""), online_user_ids=online)
        return [Emit(INFO, text, skip=(ACTOR,), scope=room), Emit(ROOM_DATA, data, scope=room)]
    if kind == "conversation.read":
        return [Emit(SEEN_BY, user_payload(user_id=actor, name=None), scope=room, receipt=True)]
    return []
