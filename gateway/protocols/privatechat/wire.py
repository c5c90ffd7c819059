"""The private chat protocol's JSON shapes (spec seed001 §2.6, §1.2) and event names. Pure.

Ids are strings: public ids (24 hex) for users, rooms and messages, and the caller's id handle
as `_id` of their own profile only. Dates are ISO-8601 UTC with milliseconds, as JavaScript's
`Date.toJSON` writes them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from accounts.models import User
from chatproject.core.timefmt import iso_ms

from .selectors import Line, Party, Profile, Room

# Event names (client events and their same-name answers).
IDENTITY = "identity"
GET_ACTIVE_CHATS = "get active chats"
NOTIFY_ONLINE = "notify online"
JOIN_ROOM = "join room"
LEAVE_ROOM = "leave room"
GET_ONLINE_INFO = "get online info"
NOTIFY_TYPING = "notify typing"
INIT_CHAT = "init chat"
SEND_MESSAGE = "send message"
FETCH_MESSAGES = "fetch messages"
READ_MESSAGES = "read messages"
ADD_FRIEND = "add friend"
ACTIVE_APP = "active app"
BACKGROUND_APP = "background app"

WELCOME = {"text": "welcome to real time chat service!!"}
WRONG_LOGIN = {"code": 401, "message": "Wrong username/password"}
USER_NOT_FOUND = {"message": "user not found"}
ROOM_TYPE = "PRIVATE"


def background_color(public_id: str) -> str:
    """The avatar colour: "r, g, b" with each channel in 157..199, as the original drew at
    sign-up; derived from the user's public id, so it is stable and needs no column."""
    digest = hashlib.sha256(public_id.encode()).digest()
    return ", ".join(str(157 + b % 43) for b in digest[:3])


def user_ref(who: Party) -> dict[str, Any]:
    return {"_id": who.id, "username": who.username, "backgroundColor": background_color(who.id)}


def message(line: Line) -> dict[str, Any]:
    """A message with its sender populated, `recipient` and `room` as bare ids."""
    return {
        "_id": line.id,
        "sender": user_ref(line.sender) if line.sender else user_ref(Party("", "")),
        "recipient": line.recipient_id,
        "room": line.room_id,
        "message": line.text,
        "read": line.read,
        "createdAt": iso_ms(line.created_at),
        "updatedAt": iso_ms(line.updated_at),
    }


def last_message(room: Room) -> dict[str, Any]:
    """The populated last message, or, for a room without one, a placeholder carrying only the
    room's creation time: the client sorts rooms by `lastMessage.createdAt` and crashes on a
    null (spec §5.3 Q1)."""
    if room.last is None:
        return {"createdAt": iso_ms(room.created_at)}
    last = room.last
    sender = {"_id": last.sender.id, "username": last.sender.username} if last.sender else {}
    return {
        "_id": last.id,
        "message": last.text,
        "read": last.read,
        "sender": sender,
        "createdAt": iso_ms(last.created_at),
    }


def room(value: Room, *, created: bool = True) -> dict[str, Any]:
    """A room: the list form (`created` False: without `createdAt`, as the original listed
    them) or the update / init form."""
    data = {
        "_id": value.id,
        "participants": [user_ref(p) for p in value.participants],
        "lastMessage": last_message(value),
        "roomType": ROOM_TYPE,
        "unreadMessages": [
            {"_id": message_id, "recipient": {"_id": who.id, "username": who.username}}
            for message_id, who in value.unread
        ],
        "updatedAt": iso_ms(value.updated_at),
    }
    if created:
        data["createdAt"] = iso_ms(value.created_at)
    return data


def rooms(values: list[Room]) -> list[dict[str, Any]]:
    return [room(r, created=False) for r in values]


def profile(value: Profile, *, handle: str) -> dict[str, Any]:
    """The sign-in and `GET /user/:id` payload. `_id` is the caller's own id handle: the only
    place a handle is ever written."""
    user = value.user
    return {
        "_id": handle,
        "username": user.display_name,
        "backgroundColor": background_color(user.public_id),
        "friends": [user_ref(f) for f in value.friends],
        "activeChats": rooms(value.rooms),
        "createdAt": iso_ms(user.created_at),
        "updatedAt": iso_ms(user.updated_at),
    }


def signed_up(user: User) -> dict[str, Any]:
    """The 201 body of `POST /user` (the client ignores it): no password, no handle."""
    return {
        "_id": user.public_id,
        "username": user.display_name,
        "backgroundColor": background_color(user.public_id),
        "friends": [],
        "activeChats": [],
        "createdAt": iso_ms(user.created_at),
        "updatedAt": iso_ms(user.updated_at),
    }


def online(user_id: str, is_online: bool) -> dict[str, Any]:
    """`get online info`: `recipientId` is always the user's public id (never a handle)."""
    return {"isOnline": is_online, "recipientId": user_id}
