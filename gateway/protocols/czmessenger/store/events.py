"""The CZ Messenger store's bus events (JSON-ready dicts)."""

from typing import Any

from .models import Room


def room_deleted(*, room: Room, side: str, actor_id: str) -> dict[str, Any]:
    return {
        "type": "czmessenger.room_deleted",
        "actor": actor_id,
        "room_id": room.room_id,
        "buyer": room.buyer.external_id or room.buyer.public_id,
        "seller": room.seller.external_id or room.seller.public_id,
        "deletion_role": side,
    }
