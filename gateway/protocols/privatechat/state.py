"""Per-connection state of the private chat protocol."""

from dataclasses import dataclass


@dataclass
class PrivateChatState:
    """The keyed digest of the handle this socket was bound with, once an event showed it
    again: later "self" arguments are compared with it in memory (no database read per event).
    A different value in a self position, even another live handle of the same user, is ignored:
    one device keeps sending the one handle its sign-in gave it."""

    handle_digest: str | None = None
