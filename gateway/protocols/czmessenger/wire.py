"""CZ Messenger payload shapes (spec §4), pure. Keys are snake_case, ids are strings, times are
ISO-8601 UTC with milliseconds (JavaScript's toISOString)."""

from typing import Any

from .state import BUYER, SELLER

CREATE_ROOM_KEYS = ("type", "buyer", "seller", "shop_id", "creator", "buyer_info")
BUYER_INFO_KEYS = ("name", "avatar", "phone_number", "email")
TYPES = {"text": "TEXT", "emoji": "EMOJI", "image": "IMAGE"}


def message_type(kind: str) -> str:
    """The wire `type` of a core message kind (kinds the wire lacks read as TEXT)."""
    return TYPES.get(kind, "TEXT")


def new_message(
    *,
    room_id: str,
    sender: str,
    recipient: str,
    kind: str,
    content: str,
    client_message_id: str | None,
    message_id: str,
    created_at: str,
) -> dict[str, Any]:
    """The `new_message` echo: only the known keys (the original echoed whatever a client sent,
    spec §8.6)."""
    payload: dict[str, Any] = {
        "room_id": room_id,
        "from": sender,
        "to": recipient,
        "type": message_type(kind),
        "content": content,
    }
    if client_message_id is not None:
        payload["client_message_id"] = client_message_id
    payload["_id"] = message_id
    payload["created_at"] = created_at
    return payload


def create_room_echo(data: dict[str, Any], room_id: str) -> dict[str, Any]:
    """The `create_room` echo: the known keys of the request, `_id` and `room_id` (the README
    says `room_id`, the code sent `_id`: both)."""
    echo = {k: data[k] for k in CREATE_ROOM_KEYS if k in data and k != "buyer_info"}
    info = data.get("buyer_info")
    if isinstance(info, dict):
        echo["buyer_info"] = {k: info[k] for k in BUYER_INFO_KEYS if isinstance(info.get(k), str)}
    return echo | {"_id": room_id, "room_id": room_id}


def counterpart(role: str) -> str:
    return SELLER if role == BUYER else BUYER


def status_change(*, user_id: str, role: str, room_id: str, online: bool) -> dict[str, Any]:
    return {"user_id": user_id, "user_role": role, "room_id": room_id, "status": online}


def active_user_list(*, user_id: str, role: str, rooms: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "user_role": role,
        "rooms": [{"room_id": room_id, "status": online} for room_id, online in rooms],
    }
