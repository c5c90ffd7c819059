"""Domain events of the accounts app: JSON-ready dicts, built only here."""

from typing import Any


def session_revoked(*, user_id: str, sid: str | None, reason: str) -> dict[str, Any]:
    """A login session (or, with sid None, every session) of a user ended: logout, ban."""
    return {"type": "session.revoked", "user_id": user_id, "sid": sid, "reason": reason}


def app_sessions_revoked(*, app_id: str, reason: str) -> dict[str, Any]:
    """Every connection of a tenant app's users ended (app-wide token revocation). Published to
    the app's bus group, which every connection of those users joins."""
    return {"type": "session.revoked", "app_id": app_id, "user_id": None, "sid": None, "reason": reason}


def user_settings_changed(
    *, user_id: str, presence_hidden: bool, read_receipts_enabled: bool
) -> dict[str, Any]:
    """A user changed their privacy settings: every process updates that user's live
    connections (receipt filtering) and recomputes what others see of their presence."""
    return {
        "type": "user.settings_changed",
        "actor": user_id,
        "user_id": user_id,
        "presence_hidden": presence_hidden,
        "read_receipts_enabled": read_receipts_enabled,
    }


def presence_changed(*, user_id: str, state: str, last_seen: str | None) -> dict[str, Any]:
    """What others may see of a user's presence changed. `state` is "foreground",
    "background" or "offline"; `last_seen` (ISO-8601) only when offline and not hidden."""
    return {
        "type": "presence.changed",
        "actor": user_id,
        "user_id": user_id,
        "state": state,
        "last_seen": last_seen,
    }


def _friend_ref(user) -> dict[str, Any]:
    return {"id": user.public_id, "name": user.display_name}


def friend_added(*, user, friend) -> dict[str, Any]:
    """`user` and `friend` became friends (`user` asked). Published to both users."""
    return {
        "type": "friend.added",
        "actor": user.public_id,
        "subject": friend.public_id,
        "user": _friend_ref(user),
        "friend": _friend_ref(friend),
    }


def friend_removed(*, user, friend) -> dict[str, Any]:
    """`user` ended the friendship with `friend`. Published to both users."""
    return {
        "type": "friend.removed",
        "actor": user.public_id,
        "subject": friend.public_id,
        "user": _friend_ref(user),
        "friend": _friend_ref(friend),
    }
