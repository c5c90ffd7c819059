"""Domain events of the groups app: pure functions returning JSON-ready dicts.

Events for the members go to the conversation's bus group; events for the one user whose
membership changed (`group.joined`, `group.removed`) go to that user's bus group, because that
user's connections are not (or no longer) in the conversation's group. `joins` and `leaves`
tell every process to add or drop local connections of those users to or from the
conversation's routing. An event with `joins` carries `seq`, the conversation's last message
before the membership began: every later message is the new member's, and a process that adds a
connection to the routing delivers to it what the conversation received after that point before
the process's subscription was in place (docs/operations.md §7.1).
"""

from typing import Any

from accounts.models import User
from messaging.models import Conversation

KICKED = "kicked"
LEFT = "left"


def _base(kind: str, conversation: Conversation, actor: User) -> dict[str, Any]:
    return {
        "type": kind,
        "actor": actor.public_id,
        "actor_name": actor.display_name,
        "conversation": {
            "id": conversation.public_id,
            "kind": conversation.kind,
            "title": conversation.title,
        },
    }


def group_created(*, conversation: Conversation, actor: User, member_ids: list[str]) -> dict[str, Any]:
    # A new group: every message in it, from its first system message on, is its members'.
    return _base("group.created", conversation, actor) | {"joins": member_ids, "seq": 0}


def group_member_added(*, conversation: Conversation, actor: User, member: User) -> dict[str, Any]:
    return _base("group.member_added", conversation, actor) | {
        "subject": member.public_id,
        "subject_name": member.display_name,
    }


def group_joined(*, conversation: Conversation, actor: User, member: User) -> dict[str, Any]:
    """Built under the group's lock, before the system message that announces the member:
    `conversation.last_seq` is then the last message before the membership."""
    return _base("group.joined", conversation, actor) | {
        "subject": member.public_id,
        "joins": [member.public_id],
        "seq": conversation.last_seq,
    }


def group_member_removed(
    *, conversation: Conversation, actor: User, member: User, reason: str
) -> dict[str, Any]:
    return _base("group.member_removed", conversation, actor) | {
        "subject": member.public_id,
        "subject_name": member.display_name,
        "reason": reason,
        "leaves": [member.public_id],
    }


def group_removed(*, conversation: Conversation, actor: User, member: User, reason: str) -> dict[str, Any]:
    return _base("group.removed", conversation, actor) | {
        "subject": member.public_id,
        "reason": reason,
        "leaves": [member.public_id],
    }


def group_admin_changed(
    *, conversation: Conversation, actor: User, member: User, role: str, handed_over: bool
) -> dict[str, Any]:
    return _base("group.admin_changed", conversation, actor) | {
        "subject": member.public_id,
        "role": role,
        "handed_over": handed_over,
    }


def group_updated(
    *, conversation: Conversation, actor: User, description: str, avatar_url: str
) -> dict[str, Any]:
    return _base("group.updated", conversation, actor) | {
        "description": description,
        "avatar_url": avatar_url,
    }


def group_deleted(*, conversation: Conversation, actor: User) -> dict[str, Any]:
    return _base("group.deleted", conversation, actor) | {"leaves_all": True}
