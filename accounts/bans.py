"""Bans and unbans as moderation: the moderator check, the ban through `services`, and the
record, in one transaction. Kept apart from `moderation` (which messaging and groups import) so
that the moderation record never depends on the account services."""

from django.db import transaction

from chatproject.core.errors import ApplicationError, ErrorCode

from . import services
from .models import User
from .moderation import Action, TargetType, moderation_action_record, moderation_reason_clean, moderator_check

# The Django permission each kind of moderation needs (superusers have them all). Bans use the
# user model's change permission, like every other state change of an account in the admin.
PERMISSION_USER_BAN = "accounts.change_user"


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
