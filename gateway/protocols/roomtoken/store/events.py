"""The room store's bus events (JSON-ready dicts)."""

from typing import Any


def room_left(*, conversation_id: str, actor_id: str, origin: str) -> dict[str, Any]:
    """A party's connection left a room (`leave-room`): the room's other sockets are told."""
    return {
        "type": "roomtoken.left",
        "actor": actor_id,
        "conversation": {"id": conversation_id, "kind": "direct"},
        "origin": origin,
    }
