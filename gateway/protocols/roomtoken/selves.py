"""What each local connection calls itself, per user, in this process.

A room-token client knows itself only by the `userId` it connected with, which here is an id
handle (a credential): where a payload names the client itself (`senderId` of its own message,
its side of a room), it must see that handle, and nobody else may ever see it. Rendering is a
pure function of the event, so `RoomToken.prepare` adds, for the users an event concerns, the
views of their local connections (a tag and the id to show) from this registry, and `render`
makes one emit per view, scoped to the connections holding that tag (`RoomToken.in_scope`).
The registry holds the connections' states weakly, so a connection that ended without a
goodbye cannot linger; nothing here leaves the process.
"""

from __future__ import annotations

import hashlib
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import RoomTokenState

_by_user: dict[str, weakref.WeakSet[RoomTokenState]] = {}


def tag_of(self_id: str) -> str:
    return hashlib.sha256(self_id.encode()).hexdigest()[:16]


def add(user_id: str, state: RoomTokenState) -> None:
    _by_user.setdefault(user_id, weakref.WeakSet()).add(state)


def remove(user_id: str, state: RoomTokenState) -> None:
    states = _by_user.get(user_id)
    if states is not None:
        states.discard(state)
        if not states:
            del _by_user[user_id]


def views_of(user_ids: list[str]) -> dict[str, list[list[str]]]:
    """user id -> [[tag, id shown], ...], one per distinct view among its local connections."""
    found: dict[str, list[list[str]]] = {}
    for user_id in user_ids:
        states = _by_user.get(user_id)
        if states is not None and not states:
            del _by_user[user_id]  # its connections ended without a goodbye: no key left behind
        elif states:
            views = {state.tag: state.self_id for state in list(states) if state.tag}
            found[user_id] = [[tag, shown] for tag, shown in sorted(views.items())]
    return found


def clear() -> None:
    """Forget everything (tests)."""
    _by_user.clear()
