"""Domain events of the accounts app: JSON-ready dicts, built only here."""

from typing import Any


def session_revoked(*, user_id: str, sid: str | None, reason: str) -> dict[str, Any]:
    """A login session (or, with sid None, every session) of a user ended: logout, ban."""
    return {"type": "session.revoked", "user_id": user_id, "sid": sid, "reason": reason}
