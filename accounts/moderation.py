"""The moderation record: what every moderation service shares.

Every moderation service (`accounts.bans`, messaging's and groups') does three things in one
transaction: check the moderator (`moderator_check`), make the change through the domain's own
helpers, and record it (`moderation_action_record`). So the log lists exactly what committed, and
a change without a reason never happens. Moderation services take the acting staff user as
`moderator` and a required `reason`; the admin is only one of their callers.

This module imports no service, so messaging and groups use it without depending on the account
services; the bans, which need both, live in `accounts.bans`.
"""

import logging
from typing import Any

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable

from .models import ModerationAction, User

logger = logging.getLogger(__name__)

Action = ModerationAction.Action
TargetType = ModerationAction.TargetType


def moderation_reason_clean(reason: object) -> str:
    """A reason is required: non-blank text of at most ModerationAction.REASON_MAX_LENGTH."""
    maximum = ModerationAction.REASON_MAX_LENGTH
    if not isinstance(reason, str) or not reason.strip():
        raise ApplicationError(ErrorCode.INVALID, "A reason is required.", {"field": "reason"})
    reason = reason.strip()
    if not is_storable(reason):
        raise ApplicationError(
            ErrorCode.INVALID, "The reason contains characters that cannot be stored.", {"field": "reason"}
        )
    if len(reason) > maximum:
        raise ApplicationError(
            ErrorCode.INVALID,
            f"The reason is longer than {maximum} characters.",
            {"field": "reason", "max_length": maximum},
        )
    return reason


def moderator_check(*, moderator: User, permission: str) -> None:
    """Only active, unbanned staff holding `permission` (or superusers) moderate."""
    if not moderator.is_active:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only staff can moderate.")
    if moderator.is_banned:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only staff can moderate.")
    if not moderator.is_staff:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only staff can moderate.")
    if not moderator.has_perm(permission):
        raise ApplicationError(
            ErrorCode.PERMISSION_DENIED, "You do not have permission to do this.", {"permission": permission}
        )


def moderation_action_record(
    *,
    moderator: User,
    action: str,
    target_type: str,
    target_id: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> ModerationAction:
    """Write the record of a moderation. Call inside the transaction that made the change,
    after `moderator_check` and `moderation_reason_clean`."""
    record = ModerationAction.objects.create(
        moderator=moderator,
        action=action,
        target_type=target_type,
        target_id=target_id,
        reason=reason,
        extra=extra or {},
    )
    logger.info("moderation %s on %s %s by %s", action, target_type, target_id, moderator.public_id)
    return record
