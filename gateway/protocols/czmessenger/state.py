"""What a CZ Messenger connection keeps."""

from dataclasses import dataclass, field

BUYER = "BUYER"
SELLER = "SELLER"


def role_of(value: object) -> str:
    """`user_role` as the original read it: BUYER, or else seller (`else` branches everywhere)."""
    return BUYER if value == BUYER else SELLER


@dataclass
class CzState:
    role: str = SELLER  # the handshake's user_role
    # room id -> conversation public id, for the rooms this connection used (typing is frequent)
    conversations: dict[str, str] = field(default_factory=dict)
