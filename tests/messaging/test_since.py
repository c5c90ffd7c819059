"""`messages_since`: a conversation's messages after a point, as the member may be shown them
live (what the realtime layer sends a connection it just routed to a conversation)."""

import pytest
from django.utils import timezone

from chatproject.core.errors import ApplicationError
from messaging.models import Message
from messaging.selectors import messages_since

from .conftest import group, leave, send, send_many

pytestmark = pytest.mark.django_db


def texts(found) -> list[str]:
    return [m.content for m in found.messages]


def test_a_member_gets_the_messages_after_the_point_oldest_first(alice, bob):
    team = group(alice, bob)
    send_many(alice, team, 5)
    found = messages_since(user=bob.user, conversation_id=team.public_id, after=2)
    assert texts(found) == ["message 3", "message 4", "message 5"]
    assert [m.seq for m in found.messages] == [3, 4, 5]
    assert (found.through, found.more, found.conversation) == (5, False, team)


def test_nothing_after_the_point_keeps_the_point(alice, bob):
    team = group(alice, bob)
    send_many(alice, team, 2)
    found = messages_since(user=bob.user, conversation_id=team.public_id, after=2)
    assert (found.messages, found.through, found.more) == ([], 2, False)


def test_a_full_read_says_there_may_be_more_and_the_next_read_goes_on(alice, bob):
    team = group(alice, bob)
    send_many(alice, team, 5)
    first = messages_since(user=bob.user, conversation_id=team.public_id, after=0, limit=3)
    assert (texts(first), first.through, first.more) == (["message 1", "message 2", "message 3"], 3, True)
    rest = messages_since(user=bob.user, conversation_id=team.public_id, after=first.through, limit=3)
    assert (texts(rest), rest.through, rest.more) == (["message 4", "message 5"], 5, False)


def test_a_hidden_or_deleted_message_is_left_out_but_covered(alice, bob):
    team = group(alice, bob)
    hidden, deleted, kept = send_many(alice, team, 3)
    Message.objects.filter(pk=hidden.pk).update(hidden_at=timezone.now())
    Message.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now(), content="")
    found = messages_since(user=bob.user, conversation_id=team.public_id, after=0)
    assert texts(found) == ["message 3"] and found.through == 3


def test_a_member_who_left_gets_only_what_came_before_leaving(alice, bob):
    team = group(alice, bob)
    send_many(alice, team, 2)
    leave(bob, team)
    send(alice, team, "after bob left")
    found = messages_since(user=bob.user, conversation_id=team.public_id, after=1)
    assert texts(found) == ["message 2"] and found.through == 2


def test_someone_never_in_the_conversation_learns_nothing(alice, bob, carol):
    team = group(alice, bob)
    send_many(alice, team, 2)
    for conversation_id in (team.public_id, "not-an-id"):
        with pytest.raises(ApplicationError) as raised:
            messages_since(user=carol.user, conversation_id=conversation_id, after=0)
        assert raised.value.code == "not_found"
