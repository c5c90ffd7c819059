"""A per-process cache of a protocol's own rooms, for protocols that keep a store of rooms beside
the core's conversations (CZ Messenger, the room-token marketplace).

Rendering needs, per bus event, the room of a conversation (its wire id and parties) and, for
presence, the rooms of a user. Both are read from the protocol's store on a miss and kept: a
room never changes its parties or ids, so a kept room cannot go stale. A conversation without a
room (another protocol's chat) is remembered as a miss for `miss_seconds` only, so a room made on
another process is found soon after; a user's rooms are read again after `user_rooms_seconds`.
Each map holds at most `kept` entries (it starts over when full)."""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable
from typing import Any, Generic, Protocol, TypeVar

from .actions import call


class Room(Protocol):
    conversation_id: str


R = TypeVar("R", bound=Room)


class RoomDirectory(Generic[R]):
    def __init__(
        self,
        *,
        of_conversation: Callable[..., R | None],
        of_user: Callable[..., list[R]],
        parties: Callable[[R], Iterable[str]],
        kept: int = 10_000,
        miss_seconds: float = 2.0,
        user_rooms_seconds: float = 5.0,
    ) -> None:
        self._of_conversation = of_conversation  # selector(conversation_id=...) -> room or None
        self._of_user = of_user  # selector(user_id=...) -> rooms
        self._parties = parties
        self.kept = kept
        self.miss_seconds = miss_seconds
        self.user_rooms_seconds = user_rooms_seconds
        self._by_conversation: dict[str, R | float] = {}  # a room, or when a miss expires
        self._by_user: dict[str, tuple[float, list[R]]] = {}

    def remember(self, room: R) -> None:
        """Keep a room just read or made; its parties' room lists are read again next time."""
        if len(self._by_conversation) >= self.kept:
            self._by_conversation.clear()
        self._by_conversation[room.conversation_id] = room
        for user_id in self._parties(room):
            self._by_user.pop(user_id, None)

    async def room_of_conversation(self, conversation_id: str) -> R | None:
        hit = self._by_conversation.get(conversation_id)
        if hit is not None and not isinstance(hit, float):
            return hit
        if hit is not None and hit > time.monotonic():
            return None
        room = await call(self._of_conversation, conversation_id=conversation_id)
        if room is None:
            if len(self._by_conversation) >= self.kept:
                self._by_conversation.clear()
            self._by_conversation[conversation_id] = time.monotonic() + self.miss_seconds
            return None
        self.remember(room)
        return room

    async def room_of_event(self, event: dict[str, Any], kinds: Container[str]) -> R | None:
        """The room of a bus event of one of `kinds` about a direct conversation, or None (another
        kind, a group, a conversation without a room): what a protocol's `prepare` adds."""
        if event.get("type") not in kinds:
            return None
        conversation = event.get("conversation") or {}
        if conversation.get("kind") != "direct":
            return None
        return await self.room_of_conversation(conversation["id"])

    async def rooms_of_user(self, user_id: str) -> list[R]:
        now = time.monotonic()
        hit = self._by_user.get(user_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        rooms = await call(self._of_user, user_id=user_id)
        if len(self._by_user) >= self.kept:
            self._by_user.clear()
        self._by_user[user_id] = (now + self.user_rooms_seconds, rooms)
        return rooms

    def clear(self) -> None:
        """Forget everything (tests)."""
        self._by_conversation.clear()
        self._by_user.clear()
