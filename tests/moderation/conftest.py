"""Fixtures for the moderation tests: members (the shared `make_user`), staff accounts with and
without the moderation permissions, conversations to moderate, a recorder in place of the bus,
and admin clients whose requests commit (run their on-commit callbacks) as in production."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from groups import services as group_services
from messaging import services as msg_services
from messaging.models import Conversation, Message

STAFF_PASSWORD = "correct horse 42"
MODERATOR_PERMISSIONS = (
    "messaging.moderate_message",
    "groups.change_group",
    "groups.delete_group",
    "accounts.change_user",
    "accounts.view_moderationaction",
    "messaging.view_message",
    "groups.view_group",
    "accounts.view_user",
)


def staff_make(email: str, *permissions: str, superuser: bool = False, **fields) -> User:
    """A staff account (verified, so it can log in to the admin) holding `permissions`."""
    if superuser:
        return User.objects.create_superuser(email, STAFF_PASSWORD, display_name="Root", **fields)
    user = User.objects.create_user(
        email, STAFF_PASSWORD, display_name=email.split("@")[0], email_verified=True, is_staff=True, **fields
    )
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # no stale permission cache


@pytest.fixture
def moderator(db) -> User:
    """Staff with the moderation permissions, not a superuser, not a member of anything."""
    return staff_make("mod@example.com", *MODERATOR_PERMISSIONS)


class CommitClient(Client):
    capture = None

    def request(self, **request):
        with self.capture(execute=True):
            return super().request(**request)


@pytest.fixture
def admin_for(db, django_capture_on_commit_callbacks):
    """A test client logged in to the admin as `user`; each request commits."""

    def make(user: User) -> CommitClient:
        client = CommitClient()
        client.capture = django_capture_on_commit_callbacks
        client.force_login(user)
        return client

    return make


@pytest.fixture
def chat(alice, bob) -> Conversation:
    conversation, _partner, _created = msg_services.direct_conversation_get_or_create(
        user=alice.user, other_user_id=bob.id
    )
    return conversation


@pytest.fixture
def team(alice, bob, carol) -> Conversation:
    """Alice's group "Team" with Bob and Carol as plain members."""
    return group_services.group_create(user=alice.user, name="Team", member_ids=[bob.id, carol.id])


def send(chat_user, conversation: Conversation, content: str = "hello") -> Message:
    message, _created = msg_services.message_send(
        user=chat_user.user, conversation_id=conversation.public_id, content=content
    )
    return message
