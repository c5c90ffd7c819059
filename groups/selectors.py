"""Reads of the groups app. Non-members get not_found for every group read."""

from dataclasses import dataclass, field

from accounts.models import User
from messaging import selectors as msg_selectors
from messaging.models import Conversation, Membership, Message

from .models import Group

ADMIN_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


@dataclass(frozen=True)
class GroupMember:
    id: str
    name: str
    role: str


def group_membership_get(*, user: User, group_id: object) -> Membership:
    """The caller's current membership of a group (not_found for anyone else)."""
    return msg_selectors.membership_get(user=user, conversation_id=group_id, kind=Conversation.Kind.GROUP)


def group_members(*, conversation: Conversation) -> list[GroupMember]:
    """Current members in order of joining."""
    rows = (
        Membership.objects.filter(conversation=conversation, left_at__isnull=True)
        .order_by("joined_at", "pk")
        .values_list("user__public_id", "user__display_name", "role")
    )
    return [GroupMember(uid, name, role) for uid, name, role in rows]


@dataclass(frozen=True)
class GroupPage:
    conversation: Conversation
    group: Group | None
    members: list[GroupMember]
    messages: list[Message]
    read_pointers: dict[str, int]
    viewer_role: str
    reactions: dict[int, list[msg_selectors.ReactionCount]] = field(default_factory=dict)


def group_page(
    *, user: User, group_id: object, before: int | None = None, limit: int | None = None
) -> GroupPage:
    """A group with its members and one page of history (newest first), for a current member."""
    membership = group_membership_get(user=user, group_id=group_id)
    page = msg_selectors.conversation_page(
        user=user, conversation_id=group_id, kind=Conversation.Kind.GROUP, before=before, limit=limit
    )
    group = Group.objects.filter(conversation=membership.conversation).first()
    members = group_members(conversation=membership.conversation)
    return GroupPage(
        page.conversation, group, members, page.messages, page.read_pointers, membership.role, page.reactions
    )


def group_list_for_user(*, user: User) -> list[msg_selectors.ConversationSummary]:
    return msg_selectors.conversation_list_for_user(user=user, kinds=(Conversation.Kind.GROUP,))
