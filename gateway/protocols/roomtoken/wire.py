"""Seed 002 payload shapes (spec §4.9), pure. Ids are strings; `dt` is ISO-8601 UTC with
milliseconds (JavaScript's toISOString); a room is shown with the keys the original stored.

Where a payload names a user, `names` says how the receiving connection sees them: itself by
its own `userId` (its handle), anyone else by their id in the app."""

from collections.abc import Callable
from typing import Any

from chatproject.core.ids import new_public_id

AUTH_FAILED = "AUTH_FAILED"
USER_ID_REQUIRED = {"code": 401, "message": "User Id is required"}
USER_ID_INVALID = {"code": 401, "message": "Invalid User Id"}
JOINED = "Joined successfully"
INVALID_CUSTOMER = "Invalid Customer id"

TYPES = ("text", "image", "vdo", "audio")  # the original's message_type enum
# Core message kinds shown as a wire type (uploads from other protocols); others read as text.
KIND_TYPES = {"image": "image", "video": "vdo", "audio": "audio"}
# A media message of this wire is a URL stored as a text message; its type rides in the
# client message id the handler gives it ("rt.<type>.<random>"), so rendering it needs no read.
LINK_PREFIX = "rt."

Names = Callable[[str], str]


def link_client_id(message_type: str) -> str:
    return f"{LINK_PREFIX}{message_type}.{new_public_id()}"


def message_type(kind: str, client_message_id: str | None) -> str:
    if client_message_id and client_message_id.startswith(LINK_PREFIX):
        sent_as = client_message_id[len(LINK_PREFIX) :].split(".", 1)[0]
        if sent_as in TYPES:
            return sent_as
    return KIND_TYPES.get(kind, "text")


def room_doc(room: dict[str, Any], names: Names) -> dict[str, Any]:
    """A room as stored by the original (`_id`, both parties, the client's room id, the token,
    the namespace). `room` is a store.selectors.RoomInfo as a dict.

    The original stored whatever keys `join-room` carried: the code's `roomID` or the README's
    `roomId` (spec §4.3), and neither when none came. The spelling is not kept here, so a room
    id is shown under both keys (a client reads the one it sent), and neither when there is none."""
    ids = {"roomID": room["room_id"], "roomId": room["room_id"]} if room["room_id"] else {}
    return {
        "_id": room["room_key"],
        "customerID": names(room["customer_id"]),
        "vendorID": names(room["vendor_id"]),
        **ids,
        "roomToken": room["token"],
        "namespace": room["namespace"],
    }


def joined(doc: dict[str, Any]) -> dict[str, Any]:
    """The success value of join-room / accept-room (`joined`, and `join-room` / `accept-room`
    to the other party)."""
    return {"success": True, "data": {"room": doc}, "message": JOINED}


def failure(message: str) -> dict[str, Any]:
    return {"success": False, "message": message}


def message(
    *,
    message_id: str,
    content: str,
    kind: str,
    client_message_id: str | None,
    sender: str,
    receiver: str,
    room_key: str,
    created_at: str,
) -> dict[str, Any]:
    """A stored message as the original sent it; `receiverId` always (the original lost it on
    the vendor's messages, spec §8.8)."""
    return {
        "_id": message_id,
        "message": content,
        "message_type": message_type(kind, client_message_id),
        "senderId": sender,
        "receiverId": receiver,
        "room_id": room_key,
        "dt": created_at,
    }


def typing(*, user: str, room_id: str) -> dict[str, Any]:
    """The code's keys, plus the README's (`success`, `typing`), harmless to either client."""
    payload: dict[str, Any] = {"userId": user}
    if room_id:
        payload["roomID"] = room_id
    return payload | {"success": True, "typing": True}


def list_room(docs: list[dict[str, Any]]) -> dict[str, Any]:
    # `succus`: the README's spelling, beside the code's `success` (spec §4.1).
    return {"event": "list-room", "success": True, "succus": True, "data": {"rooms": docs}}


def list_online_user(user_ids: list[str]) -> dict[str, Any]:
    return {
        "event": "list-online-user",
        "success": True,
        "succus": True,
        "data": {"users": [{"userId": u} for u in user_ids]},
    }


def presence(*, user: str, online: bool) -> dict[str, Any]:
    return {"userId": user, "event": "online" if online else "offline"}


def leave(*, user: str) -> dict[str, Any]:
    return {"user": {"_id": user, "customer": True}}


def left(token: str) -> dict[str, Any]:
    return {"success": True, "message": "leave successfully", "roomToken": token}
