"""The moderation record and the moderation use cases of the accounts app.

Every moderation service (here, in messaging and in groups) does three things in one transaction:
check the moderator (`moderator_check`), make the change through the domain's own helpers, and
record it (`moderation_action_record`). So the log lists exactly what committed, and a change
without a reason never happens. Moderation services take the acting staff user as `moderator`
and a required `reason`; the admin is only one of their callers.
"""

import logging
from typing import Any

from django.db import transaction

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable

from . import services
from .models import ModerationAction, User

logger = logging.getLogger(__name__)

Action = ModerationAction.Action
TargetType = ModerationAction.TargetType

# The Django permission each kind of moderation needs (superusers have them all). Bans use the
# user model's change permission, like every other state change of an account in the admin.
PERMISSION_USER_BAN = "accounts.change_user"


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


def _banned_locked(user: User) -> bool:
    """Lock the user's row (the ban services lock it again, harmlessly) and read the ban flag, so
    two moderators banning at once record one ban, not two."""
    return User.objects.select_for_update().filter(pk=user.pk).values_list("is_banned", flat=True).get()


def user_ban_as_moderator(*, moderator: User, user: User, reason: object) -> User:
    """Ban a user (see `services.user_ban`: sessions revoked, live sockets closed on commit)
    and record it. The reason is also what the user record keeps as `ban_reason`."""
    moderator_check(moderator=moderator, permission=PERMISSION_USER_BAN)
    reason = moderation_reason_clean(reason)
    with transaction.atomic():
        if _banned_locked(user):
            raise ApplicationError(ErrorCode.CONFLICT, "This user is already banned.")
        user = services.user_ban(user=user, by=moderator, reason=reason)
        moderation_action_record(
            moderator=moderator,
            action=Action.USER_BAN,
            target_type=TargetType.USER,
            target_id=user.public_id,
            reason=reason,
            extra={"email": user.email},
        )
    return user


def user_unban_as_moderator(*, moderator: User, user: User, reason: object) -> User:
    """Lift a ban (the user logs in again) and record it."""
    moderator_check(moderator=moderator, permission=PERMISSION_USER_BAN)
    reason = moderation_reason_clean(reason)
    with transaction.atomic():
        if not _banned_locked(user):
            raise ApplicationError(ErrorCode.CONFLICT, "This user is not banned.")
        was_banned_for = User.objects.filter(pk=user.pk).values_list("ban_reason", flat=True).get()
        user = services.user_unban(user=user, by=moderator)
        moderation_action_record(
            moderator=moderator,
            action=Action.USER_UNBAN,
            target_type=TargetType.USER,
            target_id=user.public_id,
            reason=reason,
            extra={"email": user.email, "ban_reason": was_banned_for},
        )
    return user
