"""Group use cases, with every rule enforced here.

Rules:
- only admins (the owner is an admin) add, kick, change admins, rename or delete;
- nobody kicks the owner, and nobody kicks themselves (they leave);
- the last admin cannot leave while other members remain: they hand over first (the ExpressChat
  rule); when the owner leaves, ownership passes to the longest-serving remaining admin;
- only current members read and post (messaging's access selector);
- every membership change is a system message in the group's history;
- a group has at most CHAT GROUP_MAX_MEMBERS current members.
A kicked or departed member keeps read access to history up to the moment they left.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from accounts import moderation
from accounts.models import ModerationAction, User
from accounts.selectors import users_in_realm
from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id
from chatproject.core.text import is_storable
from messaging.models import Conversation, Membership
from messaging.services import system_message_post

from . import events
from .models import Group
from .selectors import ADMIN_ROLES, group_membership_get

Role = Membership.Role


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, {"field": field})


def _clean_name(name: object) -> str:
    maximum = settings.CHAT["MAX_NAME_LENGTH"]
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name", "A group needs a name.")
    if not is_storable(name):
        raise _invalid("name", "The name contains characters that cannot be stored.")
    if len(name.strip()) > maximum:
        raise _invalid("name", f"The name is longer than {maximum} characters.")
    return name.strip()


def _clean_description(description: object) -> str:
    maximum = settings.CHAT["MAX_DESCRIPTION_LENGTH"]
    if description is None:
        return ""
    if not isinstance(description, str):
        raise _invalid("description", "The description must be a string.")
    if not is_storable(description):
        raise _invalid("description", "The description contains characters that cannot be stored.")
    if len(description) > maximum:
        raise _invalid("description", f"The description is longer than {maximum} characters.")
    return description.strip()


AVATAR_RULE = "The avatar must be an uploaded file (MEDIA_URL) or a URL of a configured media origin."


def _clean_avatar(avatar_url: object) -> str:
    """A group's picture is shown to every member's browser: it must be one of this server's
    uploads (a path under MEDIA_URL) or a file of a configured media origin (CHAT MEDIA_ORIGINS),
    never an arbitrary third-party host that would learn who opens the group."""
    if avatar_url in (None, ""):
        return ""
    if not isinstance(avatar_url, str) or len(avatar_url) > 500 or not is_storable(avatar_url):
        raise _invalid("avatar_url", AVATAR_RULE)
    media = settings.MEDIA_URL
    if (
        media.startswith("/")
        and avatar_url.startswith(media)
        and "//" not in avatar_url
        and ".." not in avatar_url
    ):
        return avatar_url
    try:
        URLValidator(schemes=["http", "https"])(avatar_url)
    except ValidationError as exc:
        raise _invalid("avatar_url", AVATAR_RULE) from exc
    parts = urlsplit(avatar_url)
    origins = {origin.rstrip("/") for origin in settings.CHAT["MEDIA_ORIGINS"]}
    if media.startswith("http"):
        origins.add("{0.scheme}://{0.netloc}".format(urlsplit(media)))
    if f"{parts.scheme}://{parts.netloc}" not in origins:
        raise _invalid("avatar_url", AVATAR_RULE)
    return avatar_url


def _chat_users(ids: object, *, field: str, realm_of: User) -> list[User]:
    """Users for a list of public ids: all must exist in the realm of `realm_of` and be allowed
    to chat (a user of another realm is as unknown as an id nobody has)."""
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _invalid(field, f"{field} must be a list of user ids.")
    unique = list(dict.fromkeys(ids))
    if len(unique) > settings.CHAT["GROUP_MAX_MEMBERS"]:
        raise _invalid(field, "Too many members.")
    bad = [i for i in unique if not is_public_id(i)]
    users = {
        u.public_id: u
        for u in users_in_realm(of=realm_of).filter(public_id__in=[i for i in unique if is_public_id(i)])
    }
    bad += [i for i in unique if is_public_id(i) and (i not in users or not users[i].can_chat)]
    if bad:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": field, "ids": bad[:20]})
    return [users[i] for i in unique]


def _one_user(user_id: object, *, realm_of: User) -> User:
    """A user who may be added to a group: exists in the adder's realm and may chat."""
    if not isinstance(user_id, str):
        raise _invalid("member", "member must be a user id.")
    return _chat_users([user_id], field="member", realm_of=realm_of)[0]


def _member_user(user_id: object, *, realm_of: User | None = None) -> User:
    """A user acted upon as a current member (kick, roles): may be banned or deactivated since.
    `realm_of`: only users of this user's realm (moderators, who are staff, act on any realm)."""
    if not is_public_id(user_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "Not a member of this group.", {"field": "member"})
    users = users_in_realm(of=realm_of) if realm_of is not None else User.objects.all()
    user = users.filter(public_id=user_id).first()
    if user is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "Not a member of this group.", {"field": "member"})
    return user


def _admin_membership(user: User, group_id: object) -> Membership:
    membership = group_membership_get(user=user, group_id=group_id)
    _require_admin(membership)
    return membership


def _require_admin(membership: Membership) -> None:
    if membership.role not in ADMIN_ROLES:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only group admins can do that.")


def _locked(conversation: Conversation) -> Conversation:
    """Lock the group's conversation row: membership changes of one group happen one at a time."""
    return Conversation.objects.select_for_update().get(pk=conversation.pk)


def _lock_as_admin(user: User, group_id: object) -> tuple[Conversation, Membership]:
    """Inside a transaction: lock the group, then check (again, under the lock) that the caller
    is still a current admin: a demotion or kick that committed while we waited counts."""
    conversation = _locked(_admin_membership(user, group_id).conversation)
    me = _current(conversation, user)
    if me is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such conversation.")
    _require_admin(me)
    return conversation, me


def _current(conversation: Conversation, member: User) -> Membership | None:
    return Membership.objects.filter(conversation=conversation, user=member, left_at__isnull=True).first()


def _member_count(conversation: Conversation) -> int:
    return Membership.objects.filter(conversation=conversation, left_at__isnull=True).count()


def group_create(
    *, user: User, name: object, description: object = "", member_ids: object = (), avatar_url: object = ""
) -> Conversation:
    """Create a group owned by `user` with the given members. Returns its conversation."""
    name, description, avatar_url = (
        _clean_name(name),
        _clean_description(description),
        _clean_avatar(avatar_url),
    )
    if isinstance(member_ids, tuple):
        member_ids = list(member_ids)
    members = [m for m in _chat_users(member_ids, field="member_ids", realm_of=user) if m.pk != user.pk]
    if len(members) + 1 > settings.CHAT["GROUP_MAX_MEMBERS"]:
        raise _invalid("member_ids", "Too many members.")
    with transaction.atomic():
        conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title=name, created_by=user)
        Group.objects.create(
            conversation=conversation, description=description, avatar_url=avatar_url, created_by=user
        )
        Membership.objects.bulk_create(
            [Membership(conversation=conversation, user=user, role=Role.OWNER)]
            + [Membership(conversation=conversation, user=m, role=Role.MEMBER) for m in members]
        )
        system_message_post(
            conversation=conversation, actor=user, text=f"{user.display_name} created the group"
        )
        member_ids = [user.public_id] + [m.public_id for m in members]
        publish_on_commit(
            events.group_created(conversation=conversation, actor=user, member_ids=member_ids),
            user_ids=member_ids,
        )
    return conversation


def group_update(
    *,
    user: User,
    group_id: object,
    name: object = None,
    description: object = None,
    avatar_url: object = None,
) -> Conversation:
    """Rename or re-describe a group (admins only). Publishes only when something changed."""
    new_name = _clean_name(name) if name is not None else None
    new_description = _clean_description(description) if description is not None else None
    new_avatar = _clean_avatar(avatar_url) if avatar_url is not None else None
    with transaction.atomic():
        conversation, _me = _lock_as_admin(user, group_id)
        group, _ = Group.objects.get_or_create(conversation=conversation)
        changed = False
        if new_name is not None and new_name != conversation.title:
            conversation.title = new_name
            conversation.save(update_fields=["title"])
            system_message_post(
                conversation=conversation,
                actor=user,
                text=f'{user.display_name} renamed the group to "{new_name}"',
            )
            changed = True
        for field, value in (("description", new_description), ("avatar_url", new_avatar)):
            if value is not None and value != getattr(group, field):
                setattr(group, field, value)
                changed = True
        if changed:
            group.save(update_fields=["description", "avatar_url", "updated_at"])
            publish_on_commit(
                events.group_updated(
                    conversation=conversation,
                    actor=user,
                    description=group.description,
                    avatar_url=group.avatar_url,
                ),
                conversation_ids=[conversation.public_id],
            )
    return conversation


def group_member_add(*, user: User, group_id: object, member_id: object) -> Membership:
    """Add a user to a group (admins only). A former member rejoins with a fresh membership."""
    member = _one_user(member_id, realm_of=user)
    with transaction.atomic():
        conversation, _me = _lock_as_admin(user, group_id)
        if _current(conversation, member) is not None:
            raise ApplicationError(ErrorCode.CONFLICT, "Already in Group", {"member": member.public_id})
        limit = settings.CHAT["GROUP_MAX_MEMBERS"]
        if _member_count(conversation) >= limit:
            raise ApplicationError(ErrorCode.CONFLICT, "The group is full.", {"limit": limit})
        added, _created = Membership.objects.update_or_create(
            conversation=conversation,
            user=member,
            defaults={"role": Role.MEMBER, "left_at": None, "left_seq": None, "joined_at": timezone.now()},
        )
        publish_on_commit(
            events.group_joined(conversation=conversation, actor=user, member=member),
            user_ids=[member.public_id],
        )
        publish_on_commit(
            events.group_member_added(conversation=conversation, actor=user, member=member),
            conversation_ids=[conversation.public_id],
        )
        system_message_post(
            conversation=conversation, actor=user, text=f"{user.display_name} added {member.display_name}"
        )
    return added


def _depart(conversation: Conversation, actor: User, member: Membership, reason: str, text: str) -> None:
    """End a membership: system message first, so the departing member's history ends with it."""
    message = system_message_post(conversation=conversation, actor=actor, text=text)
    member.left_at, member.left_seq, member.role = timezone.now(), message.seq, Role.MEMBER
    member.save(update_fields=["left_at", "left_seq", "role"])
    publish_on_commit(
        events.group_member_removed(
            conversation=conversation, actor=actor, member=member.user, reason=reason
        ),
        conversation_ids=[conversation.public_id],
    )
    publish_on_commit(
        events.group_removed(conversation=conversation, actor=actor, member=member.user, reason=reason),
        user_ids=[member.user.public_id],
    )


def group_member_remove(*, user: User, group_id: object, member_id: object) -> Membership:
    """Kick a member (admins only). Nobody kicks the owner or themselves; members who were
    banned or deactivated since joining can be kicked too."""
    member = _member_user(member_id, realm_of=user)
    if member.pk == user.pk:
        raise ApplicationError(ErrorCode.INVALID, "Leave the group instead of kicking yourself.")
    with transaction.atomic():
        conversation, _me = _lock_as_admin(user, group_id)
        target = _current(conversation, member)
        if target is None:
            raise ApplicationError(
                ErrorCode.NOT_FOUND, "Not a member of this group.", {"member": member.public_id}
            )
        if target.role == Role.OWNER:
            raise ApplicationError(ErrorCode.PERMISSION_DENIED, "The group's owner cannot be removed.")
        target.user = member
        _depart(
            conversation, user, target, events.KICKED, f"{user.display_name} removed {member.display_name}"
        )
    return target


def group_leave(*, user: User, group_id: object) -> Conversation:
    """Leave a group.

    The last admin must hand over first while others remain. When the owner leaves, ownership
    passes to the longest-serving remaining admin (announced like any role change). When the
    last member leaves, the group is deleted: nobody would be left to read or delete it.
    """
    membership = group_membership_get(user=user, group_id=group_id)
    with transaction.atomic():
        conversation = _locked(membership.conversation)
        me = _current(conversation, user)
        if me is None:  # left concurrently
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such conversation.")
        others = Membership.objects.filter(conversation=conversation, left_at__isnull=True).exclude(pk=me.pk)
        if not others.exists():
            _delete(conversation, user)
            return conversation
        other_admins = others.filter(role__in=ADMIN_ROLES).select_related("user").order_by("joined_at", "pk")
        if me.role in ADMIN_ROLES and not other_admins.exists():
            raise ApplicationError(
                ErrorCode.CONFLICT, "Make New Admin before Leaving", {"reason": "last_admin"}
            )
        if me.role == Role.OWNER:
            heir = other_admins.first()
            _set_role(conversation, user, heir, Role.OWNER, f"{heir.user.display_name} is now the owner")
        me.user = user
        _depart(conversation, user, me, events.LEFT, f"{user.display_name} left")
    return conversation


def _set_role(
    conversation: Conversation,
    actor: User,
    target: Membership,
    role: str,
    text: str | None,
    *,
    handed_over: bool = False,
) -> None:
    """Change a role, announce it live, and record it in history (unless `text` is None, when
    another system message of the same change says it)."""
    target.role = role
    target.save(update_fields=["role"])
    if text is not None:
        system_message_post(conversation=conversation, actor=actor, text=text)
    publish_on_commit(
        events.group_admin_changed(
            conversation=conversation, actor=actor, member=target.user, role=role, handed_over=handed_over
        ),
        conversation_ids=[conversation.public_id],
    )


def group_admin_change(
    *, user: User, group_id: object, member_id: object, make_admin: bool = True, hand_over: bool = False
) -> Membership:
    """Grant or revoke a member's admin role (admins only).

    With `hand_over` (the ExpressChat `change-admin`), the caller also steps down to member, and
    an owner passes ownership to the new admin. Handing over to the owner leaves them owner.
    """
    member = _member_user(member_id, realm_of=user)
    with transaction.atomic():
        conversation, me = _lock_as_admin(user, group_id)
        target = _current(conversation, member)
        if target is None:
            raise ApplicationError(
                ErrorCode.NOT_FOUND, "Not a member of this group.", {"member": member.public_id}
            )
        target.user, me.user = member, user
        name = member.display_name
        if hand_over:
            if member.pk == user.pk:
                raise ApplicationError(ErrorCode.INVALID, "Hand over to another member.")
            role = Role.OWNER if Role.OWNER in (me.role, target.role) else Role.ADMIN
            _set_role(conversation, user, me, Role.MEMBER, None)
            _set_role(
                conversation,
                user,
                target,
                role,
                f"{user.display_name} handed admin rights to {name}",
                handed_over=True,
            )
            return target
        if make_admin:
            if target.role in ADMIN_ROLES:
                raise ApplicationError(ErrorCode.CONFLICT, "Already an admin.")
            _set_role(conversation, user, target, Role.ADMIN, f"{user.display_name} made {name} an admin")
            return target
        if target.role == Role.OWNER:
            raise ApplicationError(ErrorCode.PERMISSION_DENIED, "The group's owner stays an admin.")
        if target.role != Role.ADMIN:
            raise ApplicationError(ErrorCode.CONFLICT, "Not an admin.")
        _set_role(conversation, user, target, Role.MEMBER, f"{user.display_name} removed {name} as admin")
    return target


def _delete(conversation: Conversation, actor: User) -> None:
    publish_on_commit(
        events.group_deleted(conversation=conversation, actor=actor),
        conversation_ids=[conversation.public_id],
    )
    conversation.delete()


def group_delete(*, user: User, group_id: object) -> str:
    """Delete a group and its history (admins only). Returns the deleted group's id."""
    with transaction.atomic():
        conversation, _me = _lock_as_admin(user, group_id)
        deleted_id = conversation.public_id
        _delete(conversation, user)
    return deleted_id


# --- moderation ----------------------------------------------------------------------------
#
# Staff moderators act on any group without being its admin. They bypass the "admins only"
# rule and nothing else: the owner is never removed or demoted (ownership is moved first, by
# making another member the owner), so a group keeps exactly one owner while it has members.
# The events are the ones the normal paths publish, so live clients update the same way and a
# removed member's sockets leave the group's routing. System messages say "A moderator ...":
# they are posted without a sender, so members never learn which staff account acted (the
# ModerationAction has that, for the admin).

PERMISSION_MEMBERS = "groups.change_group"
PERMISSION_DELETE = "groups.delete_group"
Action = ModerationAction.Action


def _lock_as_moderator(group_id: object) -> Conversation:
    """Inside a transaction: the group's conversation, locked like `_lock_as_admin` locks it."""
    if not is_public_id(group_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such group.", {"field": "group_id"})
    conversation = Conversation.objects.filter(public_id=group_id, kind=Conversation.Kind.GROUP).first()
    if conversation is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such group.", {"field": "group_id"})
    return _locked(conversation)


def _current_of(conversation: Conversation, member: User) -> Membership:
    target = _current(conversation, member)
    if target is None:
        raise ApplicationError(
            ErrorCode.NOT_FOUND, "Not a member of this group.", {"member": member.public_id}
        )
    target.user = member
    return target


def _record(moderator: User, action: str, conversation: Conversation, reason: str, **extra: object) -> None:
    moderation.moderation_action_record(
        moderator=moderator,
        action=action,
        target_type=ModerationAction.TargetType.GROUP,
        target_id=conversation.public_id,
        reason=reason,
        extra={"title": conversation.title, **extra},
    )


def group_member_remove_as_moderator(
    *, moderator: User, group_id: object, member_id: object, reason: object
) -> Membership:
    """Remove a member from any group as a staff moderator (`groups.change_group`), with a
    reason. Like a kick: system message, `group.member_removed` to the group and `group.removed`
    to the member, whose sockets leave the group. The owner cannot be removed: make another
    member the owner first (`group_role_set_as_moderator`)."""
    moderation.moderator_check(moderator=moderator, permission=PERMISSION_MEMBERS)
    reason = moderation.moderation_reason_clean(reason)
    member = _member_user(member_id)
    with transaction.atomic():
        conversation = _lock_as_moderator(group_id)
        target = _current_of(conversation, member)
        if target.role == Role.OWNER:
            raise ApplicationError(
                ErrorCode.CONFLICT,
                "The group's owner cannot be removed: make another member the owner first.",
                {"reason": "owner"},
            )
        role = target.role
        # `_depart` with a sender-less system message (see the comment above this section).
        message = system_message_post(
            conversation=conversation, actor=None, text=f"A moderator removed {member.display_name}"
        )
        target.left_at, target.left_seq, target.role = timezone.now(), message.seq, Role.MEMBER
        target.save(update_fields=["left_at", "left_seq", "role"])
        publish_on_commit(
            events.group_member_removed(
                conversation=conversation, actor=moderator, member=member, reason=events.KICKED
            ),
            conversation_ids=[conversation.public_id],
        )
        publish_on_commit(
            events.group_removed(
                conversation=conversation, actor=moderator, member=member, reason=events.KICKED
            ),
            user_ids=[member.public_id],
        )
        _record(
            moderator, Action.GROUP_MEMBER_REMOVE, conversation, reason, member_id=member.public_id, role=role
        )
    return target


def group_role_set_as_moderator(
    *, moderator: User, group_id: object, member_id: object, role: object, reason: object
) -> Membership:
    """Set a current member's role in any group as a staff moderator (`groups.change_group`),
    with a reason. `role` is "member", "admin" or "owner". Making someone the owner moves
    ownership: the previous owner stays on as an admin. The owner's own role is changed only
    that way. Announced like the admins' role changes (`group.admin_changed`, system message)."""
    moderation.moderator_check(moderator=moderator, permission=PERMISSION_MEMBERS)
    reason = moderation.moderation_reason_clean(reason)
    if role not in Role.values:
        raise _invalid("role", f"role must be one of {', '.join(Role.values)}.")
    member = _member_user(member_id)
    with transaction.atomic():
        conversation = _lock_as_moderator(group_id)
        target = _current_of(conversation, member)
        previous = target.role
        if previous == role:
            raise ApplicationError(ErrorCode.CONFLICT, f"Already {Role(role).label.lower()}.")
        if previous == Role.OWNER:
            raise ApplicationError(
                ErrorCode.CONFLICT,
                "The owner's role changes only by making another member the owner.",
                {"reason": "owner"},
            )
        name = member.display_name
        extra: dict[str, object] = {"member_id": member.public_id, "from": previous, "to": role}
        if role == Role.OWNER:
            system_message_post(
                conversation=conversation, actor=None, text=f"A moderator made {name} the owner"
            )
            owner = (
                Membership.objects.filter(conversation=conversation, left_at__isnull=True, role=Role.OWNER)
                .select_related("user")
                .first()
            )
            if owner is not None:
                _set_role(conversation, moderator, owner, Role.ADMIN, None)
                extra["previous_owner_id"] = owner.user.public_id
        elif role == Role.ADMIN:
            system_message_post(
                conversation=conversation, actor=None, text=f"A moderator made {name} an admin"
            )
        else:
            system_message_post(
                conversation=conversation, actor=None, text=f"A moderator removed {name} as admin"
            )
        _set_role(conversation, moderator, target, role, None)
        _record(moderator, Action.GROUP_ROLE_CHANGE, conversation, reason, **extra)
    return target


def group_delete_as_moderator(*, moderator: User, group_id: object, reason: object) -> str:
    """Delete any group and its history as a staff moderator (`groups.delete_group`), with a
    reason. Members hear `group.deleted`, as when an admin deletes it. Returns the group's id."""
    moderation.moderator_check(moderator=moderator, permission=PERMISSION_DELETE)
    reason = moderation.moderation_reason_clean(reason)
    with transaction.atomic():
        conversation = _lock_as_moderator(group_id)
        deleted_id = conversation.public_id
        _record(
            moderator,
            Action.GROUP_DELETE,
            conversation,
            reason,
            members=_member_count(conversation),
            last_seq=conversation.last_seq,
        )
        _delete(conversation, moderator)
    return deleted_id
