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


class Elsewhere:
    """Another process's transaction, held open: a thread runs `work()` inside a transaction of
    its own and commits when released (`commit`, or leaving the `with`). `result` is what
    `work` returned."""

    def __init__(self, work) -> None:
        import threading

        self._work = work
        self._holding, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run)
        self.result = None

    def _run(self) -> None:
        from django.db import connection, transaction

        try:
            with transaction.atomic():
                self.result = self._work()
                self._holding.set()
                self._release.wait(10)
        finally:
            connection.close()

    def __enter__(self) -> "Elsewhere":
        self._thread.start()
        assert self._holding.wait(10), "the other transaction never got going"
        return self

    def commit(self) -> None:
        self._release.set()
        self._thread.join(10)

    def __exit__(self, *exc) -> None:
        self.commit()


def stored_elsewhere(conversation: Conversation, sender, content: str, cid: str) -> Elsewhere:
    """A send of another process, stored and uncommitted (the conversation row locked, as a
    send batch locks it): `result` is its message."""
    from django.utils import timezone

    from messaging.services import storage

    def store() -> Message:
        last_seq, last_rev = storage._take_seqs({conversation.pk: 1}, timezone.now())[conversation.pk]
        return Message.objects.create(
            conversation=conversation,
            seq=last_seq,
            rev=last_rev,
            sender=sender.user,
            content=content,
            client_message_id=cid,
        )

    return Elsewhere(store)


def blocked_elsewhere(conversation: Conversation, by) -> Elsewhere:
    """A block of the conversation by `by`, uncommitted (its row locked)."""
    return Elsewhere(
        lambda: services.conversation_block(
            user=by.user, conversation_id=conversation.public_id, blocked=True
        )
    )


def waiting_on_a_lock(statement_part: str, seconds: float = 10) -> bool:
    """Whether a backend running a statement that contains `statement_part` comes to wait on a
    lock within `seconds` (polled)."""
    import time

    from django.db import connection

    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{statement_part}%"],
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False
