"""Fixtures for the messaging tests: users with tokens (from the shared `make_user`), their
conversations, API clients that run on-commit callbacks, and a recorder in place of the bus.

Tests run inside a transaction, so on_commit callbacks (realtime publishes) would never fire. The
API clients run them when each request ends, as autocommit does in production.
"""

from accounts.models import User
from messaging import services
from messaging.models import Conversation, Membership, Message


def direct(a, b) -> Conversation:
    conversation, _partner, _created = services.direct_conversation_get_or_create(
        user=a.user, other_user_id=b.id
    )
    return conversation


def self_chat(a) -> Conversation:
    return services.self_conversation_ensure(user=a.user)


def group(*members) -> Conversation:
    """A group conversation, written directly: group services arrive with the groups issue."""
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, created_by=members[0].user)
    for member in members:
        Membership.objects.create(conversation=conversation, user=member.user)
    return conversation


def send(a, conversation: Conversation, content: str = "hello", **kwargs) -> Message:
    message, _created = services.message_send(
        user=a.user, conversation_id=conversation.public_id, content=content, **kwargs
    )
    return message


def send_many(a, conversation: Conversation, count: int) -> list[Message]:
    return [send(a, conversation, f"message {i}") for i in range(1, count + 1)]


def leave(a, conversation: Conversation) -> Membership:
    """Mark a member as gone at the conversation's current sequence number."""
    conversation.refresh_from_db()
    membership = Membership.objects.get(conversation=conversation, user=a.user)
    membership.left_at = conversation.last_message_at
    membership.left_seq = conversation.last_seq
    membership.save(update_fields=["left_at", "left_seq"])
    return membership


def read_seq(a, conversation: Conversation) -> int:
    return Membership.objects.get(conversation=conversation, user=a.user).last_read_seq


def user_unverified(email: str = "unverified@example.com") -> User:
    return User.objects.create_user(email, "correct horse 42", display_name="Unverified")


def ban(a) -> None:
    a.user.is_banned = True
    a.user.save(update_fields=["is_banned"])
