"""Friends: a symmetric contact list, the same for every protocol (docs/protocol.md "Friends").

A friendship is two `Friendship` rows written in one transaction, so it is always mutual and one
query lists a user's friends in the order they were added. Adding someone already a friend
changes nothing and publishes nothing (`created` False); a friend is a user of the same realm who
may chat, never oneself. On commit both users' connections hear `friend.added` (or
`friend.removed`); protocols render it their own way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from . import events
from .models import Friendship, User
from .selectors import users_in_realm

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FriendAdded:
    friend: User
    created: bool  # False: they were friends already, nothing changed


def _not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})


def _friend_candidate(*, user: User, friend_id: object) -> User:
    """The user someone names as a friend: of the same realm and allowed to chat; an id from
    another realm is not found, like an id nobody has."""
    if not is_public_id(friend_id):
        raise _not_found()
    other = users_in_realm(of=user).filter(public_id=friend_id).first()
    if other is None or not other.can_chat:
        raise _not_found()
    if other.pk == user.pk:
        raise ApplicationError(ErrorCode.INVALID, "You cannot befriend yourself.", {"field": "user_id"})
    return other


def friend_add(*, user: User, friend_id: object) -> FriendAdded:
    """Make `user` and the user `friend_id` names friends of each other. Idempotent: an
    existing friendship is left as it is (`created` False, no event). Each side may have at most
    CHAT FRIENDS_MAX friends."""
    other = _friend_candidate(user=user, friend_id=friend_id)
    if Friendship.objects.filter(user=user, friend=other).exists():
        return FriendAdded(other, created=False)
    limit = settings.CHAT["FRIENDS_MAX"]
    for side in (user, other):
        if Friendship.objects.filter(user=side).count() >= limit:
            raise ApplicationError(
                ErrorCode.CONFLICT, f"A user may have at most {limit} friends.", {"max": limit}
            )
    try:
        with transaction.atomic():
            Friendship.objects.bulk_create(
                [Friendship(user=user, friend=other), Friendship(user=other, friend=user)]
            )
            publish_on_commit(
                events.friend_added(user=user, friend=other), user_ids=[user.public_id, other.public_id]
            )
    except IntegrityError:  # a concurrent add of the same pair won
        return FriendAdded(other, created=False)
    logger.info("friendship %s <-> %s added", user.public_id, other.public_id)
    return FriendAdded(other, created=True)


def friend_remove(*, user: User, friend_id: object) -> bool:
    """End a friendship, both sides at once. Returns whether there was one (removing a
    non-friend is not an error: the outcome the caller wanted holds)."""
    if not is_public_id(friend_id):
        raise _not_found()
    other = users_in_realm(of=user).filter(public_id=friend_id).first()
    if other is None:
        raise _not_found()
    with transaction.atomic():
        deleted, _ = (
            Friendship.objects.filter(user=user, friend=other)
            | Friendship.objects.filter(user=other, friend=user)
        ).delete()
        if deleted:
            publish_on_commit(
                events.friend_removed(user=user, friend=other), user_ids=[user.public_id, other.public_id]
            )
    return bool(deleted)


def friends_of(*, user: User) -> list[User]:
    """The user's friends, in the order they were added (at most CHAT FRIENDS_MAX)."""
    rows = (
        Friendship.objects.filter(user=user)
        .select_related("friend")
        .order_by("created_at", "pk")[: settings.CHAT["FRIENDS_MAX"]]
    )
    return [row.friend for row in rows]


def friend_ids_of(*, user: User) -> set[str]:
    """Public ids of the user's friends."""
    return set(Friendship.objects.filter(user=user).values_list("friend__public_id", flat=True))
