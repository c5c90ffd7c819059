"""What a CZ Messenger connection keeps."""

from dataclasses import dataclass, field

from .store.selectors import RoomInfo

BUYER = "BUYER"
SELLER = "SELLER"


def role_of(value: object) -> str:
    """`user_role` as the original read it: BUYER, or else seller (`else` branches everywhere)."""
    return BUYER if value == BUYER else SELLER


@dataclass
class CzState:
    role: str = SELLER  # the handshake's user_role
    # room id -> the room's ids and parties, for the rooms this connection used (sends and
    # typing are frequent; a room's parties and ids never change; a block is the core's, checked
    # by the send itself)
    rooms: dict[str, RoomInfo] = field(default_factory=dict)
