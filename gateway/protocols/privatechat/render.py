"""Domain events as the private chat app sees them. Pure: what needs a read (the room after a
message or a read receipt) was added by `prepare` under PREPARED."""

from __future__ import annotations

from typing import Any

from gateway.audience import ACTOR, SUBJECT, Emit
from gateway.presence import FOREGROUND

from . import wire
from .selectors import Party

PREPARED = "privatechat"  # the key `prepare` adds to an event
DIRECT = "direct"


def _direct(event: dict[str, Any]) -> bool:
    return (event.get("conversation") or {}).get("kind") == DIRECT


def render(event: dict[str, Any]) -> list[Emit]:
    kind = event.get("type")
    prepared = event.get(PREPARED)
    if kind == "message.created" and _direct(event) and prepared:
        # Room-all: both participants' sockets, the sender's own included (the app shows its
        # message when this arrives).
        return [Emit(wire.SEND_MESSAGE, {"message": prepared["message"], "updatedRoom": prepared["room"]})]
    if kind == "conversation.read" and _direct(event) and prepared:
        payload = {"updatedMessages": prepared["messages"], "updatedRoom": prepared["room"]}
        return [Emit(wire.READ_MESSAGES, payload)]
    if kind in ("typing.started", "typing.stopped") and _direct(event):
        return [Emit(wire.NOTIFY_TYPING, kind == "typing.started", skip=(ACTOR,))]
    if kind == "presence.changed":
        is_online = event.get("state") == FOREGROUND
        return [Emit(wire.GET_ONLINE_INFO, wire.online(event["user_id"], is_online), skip=(ACTOR,))]
    if kind == "friend.added":
        user, friend = event["user"], event["friend"]
        return [
            Emit(wire.ADD_FRIEND, wire.user_ref(Party(friend["id"], friend["name"])), to=ACTOR),
            Emit(wire.ADD_FRIEND, wire.user_ref(Party(user["id"], user["name"])), to=SUBJECT),
        ]
    return []
