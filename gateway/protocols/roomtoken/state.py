"""What a room-token connection keeps."""

from dataclasses import dataclass, field

from .store.selectors import RoomInfo


@dataclass(eq=False)  # hashed by identity: `selves` holds states in a WeakSet
class RoomTokenState:
    namespace: str  # "customer" or "artisans" (the mount's namespace, without the slash)
    # What this client calls itself: the id handle it connected with (its `userId`), or its id
    # in the app when it presented a token. Shown to this connection only (`selves`).
    self_id: str = ""
    tag: str = ""  # a digest of self_id naming this connection's view in emit scopes
    # token -> room, for the rooms this connection used (a room's parties never change)
    rooms: dict[str, RoomInfo] = field(default_factory=dict)
