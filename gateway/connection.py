"""What every transport knows about one live connection, and the per-connection rate limit."""

import time
from dataclasses import dataclass, field
from typing import Any

from accounts.models import User


@dataclass
class TokenBucket:
    """Allows `burst` events at once and `rate` per second after that."""

    burst: float
    rate: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Connection:
    """One authenticated socket (Socket.IO sid or /ws/ consumer)."""

    id: str
    user: User
    session_id: str  # the LoginSession sid the token belongs to
    expires_at: int  # access token expiry, unix seconds
    transport: str  # "socketio" | "ws"
    refresh_token: str | None = None  # ExpressChat path: lets the server renew the access token
    bucket: TokenBucket | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.user.public_id
