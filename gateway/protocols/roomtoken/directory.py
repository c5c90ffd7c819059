"""What rendering needs of rooms, per process: the room of a conversation, and the rooms of a
user (for presence). Read from the store on a miss and kept: a room never changes its parties,
token or ids, so a kept entry cannot go stale; a conversation without a room (another
protocol's chat) is asked again after MISS_SECONDS, a user's rooms after USER_ROOMS_SECONDS."""

from __future__ import annotations

import time

from gateway.actions import call

from .store.selectors import RoomInfo, room_info_for_conversation, room_infos_of_user

ROOMS_KEPT = 10_000
MISS_SECONDS = 2.0
USER_ROOMS_SECONDS = 5.0

_by_conversation: dict[str, RoomInfo | float] = {}
_by_user: dict[str, tuple[float, list[RoomInfo]]] = {}


def remember(info: RoomInfo) -> None:
    if len(_by_conversation) >= ROOMS_KEPT:
        _by_conversation.clear()
    _by_conversation[info.conversation_id] = info
    _by_user.pop(info.customer_id, None)
    _by_user.pop(info.vendor_id, None)


async def room_of_conversation(conversation_id: str) -> RoomInfo | None:
    hit = _by_conversation.get(conversation_id)
    if isinstance(hit, RoomInfo):
        return hit
    if hit is not None and hit > time.monotonic():
        return None
    info = await call(room_info_for_conversation, conversation_id=conversation_id)
    if info is None:
        if len(_by_conversation) >= ROOMS_KEPT:
            _by_conversation.clear()
        _by_conversation[conversation_id] = time.monotonic() + MISS_SECONDS
        return None
    remember(info)
    return info


async def rooms_of_user(user_id: str) -> list[RoomInfo]:
    now = time.monotonic()
    hit = _by_user.get(user_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    infos = await call(room_infos_of_user, user_id=user_id)
    if len(_by_user) >= ROOMS_KEPT:
        _by_user.clear()
    _by_user[user_id] = (now + USER_ROOMS_SECONDS, infos)
    return infos


def clear() -> None:
    """Forget everything (tests)."""
    _by_conversation.clear()
    _by_user.clear()
