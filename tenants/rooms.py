"""Named rooms of a tenant app (seed 003's `room`): services and selectors.

A room is a group conversation of the app's users plus an `AppRoom` row naming it within the
app. Membership changes go through the groups services, acting as the room's owner, so the same
rules, system messages and events apply as for any group. Users are named by the app's own ids
(seed 003 sends numbers: they are taken as their decimal text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from accounts.models import App, User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable
from groups.services import group_create, group_delete, group_member_add, group_member_remove
from messaging.models import Membership, Message

from .models import AppRoom

ROOM_NAME_MAX_LENGTH = 100
EXTRA_MAX_BYTES = 4096
MEMBERS_MAX = 1000
PAGE_LIMIT_DEFAULT = 20
PAGE_LIMIT_MAX = 100
# Offsets are bounded: page * limit beyond this reads nothing (a client reaching that far back
# should be using the REST history, which is keyset-paginated).
PAGE_OFFSET_MAX = 10_000


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, {"field": field})


def _room_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "Room Not Found", {"field": "room"})


def app_user_id_text(value: object) -> str | None:
    """An app's user id as given by seed 003 clients (a number or a string), as text; None when
    it cannot be an id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None


def _room_name(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > ROOM_NAME_MAX_LENGTH
        or not is_storable(value)
    ):
        raise _invalid("room", f"room is a name of 1 to {ROOM_NAME_MAX_LENGTH} characters.")
    return value


def _extra(value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(json.dumps(value)) > EXTRA_MAX_BYTES:
        raise _invalid("extra", f"extra is a JSON object of at most {EXTRA_MAX_BYTES} bytes.")
    return value


def _id_list(value: object) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MEMBERS_MAX:
        raise _invalid("users", f"users is a list of 1 to {MEMBERS_MAX} user ids.")
    ids = [app_user_id_text(v) for v in value]
    if any(i is None for i in ids):
        raise _invalid("users", "users is a list of user ids.")
    return list(dict.fromkeys(ids))  # type: ignore[arg-type]


def app_users_get(*, app: App, user_ids: object) -> list[User]:
    """The app's users for a list of its ids, in order. Unknown ids: invalid, naming them the
    way seed 003 did ("Users 3,4 not registered")."""
    ids = _id_list(user_ids)
    found = {u.external_id: u for u in User.objects.filter(app=app, external_id__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        names = ",".join(m[:64] for m in missing[:20])
        raise ApplicationError(
            ErrorCode.INVALID, f"Users {names} not registered", {"field": "users", "ids": missing[:20]}
        )
    return [found[i] for i in ids]


# --- selectors ---------------------------------------------------------------------------------


def app_room_get(*, app: App, name: object) -> AppRoom:
    """One of the app's rooms by name; not_found for any other."""
    room = (
        AppRoom.objects.select_related("conversation", "app").filter(app=app, name=name).first()
        if isinstance(name, str)
        else None
    )
    if room is None:
        raise _room_not_found()
    return room


def app_room_list(*, app: App) -> QuerySet[AppRoom]:
    return AppRoom.objects.filter(app=app).select_related("conversation", "app").order_by("id")


def app_rooms_of_user(*, user: User) -> QuerySet[AppRoom]:
    """The rooms the user is a current member of."""
    return (
        AppRoom.objects.filter(
            app_id=user.app_id,
            conversation__memberships__user=user,
            conversation__memberships__left_at__isnull=True,
        )
        .select_related("conversation", "app")
        .order_by("id")
    )


def app_room_members(*, room: AppRoom) -> list[User]:
    """The room's current members (removed members are not)."""
    return [
        m.user
        for m in Membership.objects.filter(conversation_id=room.conversation_id, left_at__isnull=True)
        .select_related("user")
        .order_by("id")
    ]


def app_room_for_member(*, user: User, name: object) -> AppRoom:
    """The room of the user's app with this name, if the user is a current member of it (a
    removed member is not); not_found otherwise, the same for every reason."""
    if user.app_id is None or not isinstance(name, str):
        raise _room_not_found()
    room = app_rooms_of_user(user=user).filter(name=name).first()
    if room is None:
        raise _room_not_found()
    return room


def app_room_check(*, app: App, user_ids: object) -> AppRoom:
    """The first room of the app whose current members are exactly these users."""
    users = app_users_get(app=app, user_ids=user_ids)
    wanted = {u.pk for u in users}
    rooms = app_room_list(app=app).filter(
        conversation__memberships__user__in=users, conversation__memberships__left_at__isnull=True
    )
    for room in rooms.distinct()[:100]:
        current = set(
            Membership.objects.filter(conversation_id=room.conversation_id, left_at__isnull=True).values_list(
                "user_id", flat=True
            )
        )
        if current == wanted:
            return room
    raise _room_not_found()


@dataclass(frozen=True)
class RoomPage:
    messages: list[Message]
    page: int
    limit: int


def app_room_page(*, user: User, room: AppRoom, page: object = None, limit: object = None) -> RoomPage:
    """Seed 003's `load_more`: one page of the room's messages, newest first, offset-paginated
    (page from 1, limit 1..PAGE_LIMIT_MAX), without system messages and deleted or hidden ones.
    Only for a current member."""
    page = page if isinstance(page, int) and not isinstance(page, bool) and page >= 1 else 1
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        limit = PAGE_LIMIT_DEFAULT
    limit = min(limit, PAGE_LIMIT_MAX)
    offset = (page - 1) * limit
    if not Membership.objects.filter(
        conversation_id=room.conversation_id, user=user, left_at__isnull=True
    ).exists():
        raise _room_not_found()
    if offset >= PAGE_OFFSET_MAX:
        return RoomPage([], page, limit)
    messages = list(
        Message.objects.filter(
            conversation_id=room.conversation_id, deleted_at__isnull=True, hidden_at__isnull=True
        )
        .exclude(kind=Message.Kind.SYSTEM)
        .select_related("sender")
        .order_by("-seq")[offset : offset + limit]
    )
    return RoomPage(messages, page, limit)


# --- services ----------------------------------------------------------------------------------


def _owner(room: AppRoom) -> User:
    membership = (
        Membership.objects.filter(
            conversation_id=room.conversation_id, left_at__isnull=True, role=Membership.Role.OWNER
        )
        .select_related("user")
        .first()
    )
    if membership is None:  # a group always has an owner while it has members
        raise _room_not_found()
    return membership.user


def app_room_create(*, app: App, name: object, user_ids: object, extra: object = None) -> AppRoom:
    """Create a room of the app's users (the first one owns it). A name the app already uses is
    a conflict ("Room Already Exists"); unknown users are invalid."""
    name = _room_name(name)
    extra = _extra(extra)
    users = app_users_get(app=app, user_ids=user_ids)
    if AppRoom.objects.filter(app=app, name=name).exists():
        raise ApplicationError(ErrorCode.CONFLICT, "Room Already Exists", {"field": "room"})
    with transaction.atomic():
        conversation = group_create(user=users[0], name=name, member_ids=[u.public_id for u in users[1:]])
        return AppRoom.objects.create(app=app, name=name, conversation=conversation, extra=extra)


def app_room_members_add(*, app: App, name: object, user_ids: object) -> AppRoom:
    """Add users to a room (those already in it are left as they are)."""
    room = app_room_get(app=app, name=name)
    users = app_users_get(app=app, user_ids=user_ids)
    current = {u.pk for u in app_room_members(room=room)}
    owner = _owner(room)
    with transaction.atomic():
        for user in users:
            if user.pk not in current:
                group_member_add(user=owner, group_id=room.conversation.public_id, member_id=user.public_id)
    return room


def app_room_members_remove(*, app: App, name: object, user_ids: object) -> AppRoom:
    """Remove users from a room: they can no longer join it, read it or post in it, and their
    live connections leave it. Users not in it are skipped; the owner cannot be removed."""
    room = app_room_get(app=app, name=name)
    users = app_users_get(app=app, user_ids=user_ids)
    current = {u.pk for u in app_room_members(room=room)}
    owner = _owner(room)
    with transaction.atomic():
        for user in users:
            if user.pk in current:
                group_member_remove(
                    user=owner, group_id=room.conversation.public_id, member_id=user.public_id
                )
    return room


def app_room_delete(*, app: App, name: object) -> str:
    """Delete a room and its history. Returns its name."""
    room = app_room_get(app=app, name=name)
    group_delete(user=_owner(room), group_id=room.conversation.public_id)  # cascades to the AppRoom
    return room.name


USERS_LIST_MAX = 1000


def app_user_list(*, app: App) -> list[User]:
    """The app's users, oldest first, at most USERS_LIST_MAX."""
    return list(User.objects.filter(app=app).order_by("id")[:USERS_LIST_MAX])


def app_room_create_for_members(
    *, app: App, name: object, user_ids: object, extra: object = None
) -> tuple[AppRoom, list[User]]:
    """`app_room_create`, answered with the room's members."""
    room = app_room_create(app=app, name=name, user_ids=user_ids, extra=extra)
    return room, app_room_members(room=room)
