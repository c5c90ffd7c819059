"""The token bucket every rate limit of the gateway uses (per connection, per user, per
Engine.IO session). Plain Python: transports use it without Django."""

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
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
