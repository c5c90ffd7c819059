"""The CHAT SERVER wire shapes (spec seed003-callsewa §4.2), pure.

Users are named by this server's public id (`id`, `userId`: the original's internal id) and the
tenant's own id (`appUserId`). Tokens and the app row are never in any payload (spec §8.1).
Message texts are stored as plain text and sent as standard base64 of their UTF-8 bytes.
"""

import base64
from typing import Any

from chatproject.core.timefmt import iso_ms

# Event names (the original's src/constants.ts and literals).
INFO = "info"
ERR = "err"
ROOM_INFO = "room_info"
ROOM_DATA = "roomData"
IS_TYPING = "is_typing"
SEEN_BY = "seen_by"
MESSAGE = "message"
LOAD_MORE = "load_more"
DELETE = "delete"

# The original's strings, kept word for word.
JOINED = "You have joined the room"
INPUT_ROOM = "Input room name"
INVALID_ROOM = "Invalid room name"
NO_MESSAGE = "No message or sender"
NO_TOKEN = "No token key found"
TOKEN_MISMATCH = "token key mismatch"


def b64(text: str) -> str:
    """Standard base64 (with padding) of the UTF-8 text, as js-base64 `encode` gave."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def split_name(display_name: str | None) -> tuple[str, str]:
    """The core keeps one display name ("first last"): first word, then the rest."""
    first, _, last = (display_name or "").partition(" ")
    return first, last


def user_payload(*, user_id: str | None, name: str | None, app_user_id: str | None = None) -> dict[str, Any]:
    first, last = split_name(name)
    return {
        "id": user_id,
        "appUserId": app_user_id,
        "firstName": first,
        "lastName": last,
        "middleName": None,
    }


def user_of(user: Any) -> dict[str, Any]:
    """A User row as the original's User object, minus `token`, `appId` and `app`."""
    return {
        **user_payload(user_id=user.public_id, name=user.display_name, app_user_id=user.external_id),
        "createdAt": iso_ms(user.created_at),
        "updatedAt": iso_ms(user.updated_at),
        "deletedAt": None,
    }


def room_payload(room: Any, members: list[Any]) -> dict[str, Any]:
    """`room_info` and REST rooms: the room with its current members."""
    return {**room_row(room), "users": [user_of(u) for u in members]}


def room_row(room: Any) -> dict[str, Any]:
    return {
        "id": room.conversation.public_id,
        "room": room.name,
        "appId": room.app.public_id,
        "extra": room.extra,
        "createdAt": iso_ms(room.created_at),
        "updatedAt": iso_ms(room.created_at),
        "deletedAt": None,
    }


def room_data(*, conversation_id: str, name: str, online_user_ids: list[str]) -> dict[str, Any]:
    """`roomData`: the room's members who are connected now (never anyone else's)."""
    return {
        "room": name,
        "users": [{"room": name, "roomId": conversation_id, "sender": u} for u in online_user_ids],
    }


def message_of(message: Any) -> dict[str, Any]:
    """A stored message as a `load_more` item (no roomId, no deletedAt: deleted ones are left
    out)."""
    sender = message.sender
    return {
        "id": message.public_id,
        "message": b64(message.content),
        "userId": sender.public_id if sender else None,
        "createdAt": iso_ms(message.created_at),
        "updatedAt": iso_ms(message.edited_at or message.created_at),
        "user": user_of(sender) if sender else None,
    }


def message_from_event(conversation_id: str, actor: str | None, message: dict[str, Any]) -> dict[str, Any]:
    """A `message` event from a domain event's message (created or edited)."""
    created = message.get("created_at")
    return {
        "id": message["id"],
        "roomId": conversation_id,
        "message": b64(message.get("content") or ""),
        "userId": actor,
        "createdAt": created,
        "updatedAt": message.get("edited_at") or created,
        "deletedAt": None,
        "user": user_payload(user_id=actor, name=message.get("sender_name")),
    }


def app_row(app: Any, *, secret: str | None = None) -> dict[str, Any]:
    """The original's App row. `id` and `applicationId` are both this server's app id (the
    original's integer key and its UUID); `authUserId` is the owner's public id. The secret is
    only in the answer to `POST /app` (`secret`), never in a list."""
    row = {
        "id": app.public_id,
        "applicationId": app.public_id,
        "name": app.name,
        "verifyUrl": app.verify_url or None,
        "authUserId": app.owner.public_id if app.owner_id else None,
        "createdAt": iso_ms(app.created_at),
        "updatedAt": iso_ms(app.updated_at),
        "deletedAt": None if app.is_active else iso_ms(app.updated_at),
    }
    if secret is not None:
        row["secret"] = secret
    return row
