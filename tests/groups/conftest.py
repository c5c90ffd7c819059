"""Fixtures for the groups tests: users with tokens (from the shared `make_user`), a group built
through the services, API clients that run on-commit callbacks, and a recorder in place of the bus.

Tests run inside a transaction, so on_commit callbacks (realtime publishes) never fire by
themselves. The API clients run them when each request ends, as autocommit does in production.
"""

import pytest

from groups import services
from messaging.models import Conversation, Membership, Message


@pytest.fixture
def team(alice, bob, carol) -> Conversation:
    """Alice's group "Team" with Bob and Carol as plain members."""
    return create(alice, bob, carol)


def create(owner, *members, name: str = "Team", **kwargs) -> Conversation:
    return services.group_create(user=owner.user, name=name, member_ids=[m.id for m in members], **kwargs)


def membership(conversation: Conversation, chat_user) -> Membership:
    return Membership.objects.get(conversation=conversation, user=chat_user.user)


def role(conversation: Conversation, chat_user) -> str | None:
    """The user's current role, None when they are not (or no longer) a member."""
    row = membership(conversation, chat_user)
    return None if row.left_at is not None else row.role


def roles(conversation: Conversation) -> dict[str, str]:
    """display name -> role of every current member."""
    return dict(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
            "user__display_name", "role"
        )
    )


def system_texts(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, kind=Message.Kind.SYSTEM)
        .order_by("seq")
        .values_list("content", flat=True)
    )


def make_admin(conversation: Conversation, by, member) -> None:
    services.group_admin_change(user=by.user, group_id=conversation.public_id, member_id=member.id)
