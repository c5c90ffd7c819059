"""No per-member database work on the send path: a message into a group of 1,000 costs the same
queries as one into a group of 10, and reaches the bus as one publish to the conversation."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from groups import services
from messaging import services as msg_services

pytestmark = pytest.mark.django_db

BIG = 1000
# The send path's budget: membership check, savepoint, seq UPDATE ... RETURNING, message INSERT,
# the sender's read pointer, release. None of them grows with the group.
SEND_QUERIES = 6


def verified_users(count: int, prefix: str) -> list[User]:
    # Straight to the table: a thousand sign-ups would test the accounts app, not this one.
    return User.objects.bulk_create(
        User(email=f"{prefix}{i}@example.com", display_name=f"{prefix} {i}", email_verified=True)
        for i in range(count)
    )


def group_of(owner, size: int, prefix: str):
    members = verified_users(size - 1, prefix)
    return services.group_create(user=owner.user, name=prefix, member_ids=[m.public_id for m in members])


def send_queries(owner, conversation, bus_sent, capture) -> int:
    bus_sent.clear()
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        msg_services.message_send(user=owner.user, conversation_id=conversation.public_id, content="hi all")
    assert [groups for groups, _event in bus_sent] == [[f"c.{conversation.public_id}"]]
    return len(queries)


@pytest.fixture
def groups_10_and_1000(settings, alice):
    settings.CHAT = {**settings.CHAT, "GROUP_MAX_MEMBERS": BIG}
    return group_of(alice, 10, "small"), group_of(alice, BIG, "big")


def test_send_to_a_group_of_1000_costs_the_same_queries_as_to_a_group_of_10(
    alice, groups_10_and_1000, bus_sent, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    small, big = groups_10_and_1000
    assert big.memberships.filter(left_at__isnull=True).count() == BIG
    at_10 = send_queries(alice, small, bus_sent, django_capture_on_commit_callbacks)
    at_1000 = send_queries(alice, big, bus_sent, django_capture_on_commit_callbacks)
    assert at_1000 == at_10
    with django_assert_max_num_queries(SEND_QUERIES):
        msg_services.message_send(user=alice.user, conversation_id=big.public_id, content="again")


def test_create_with_1000_members_takes_a_bounded_number_of_queries(settings, alice, bus_sent):
    settings.CHAT = {**settings.CHAT, "GROUP_MAX_MEMBERS": BIG}
    members = verified_users(BIG - 1, "many")
    with CaptureQueriesContext(connection) as queries:
        services.group_create(user=alice.user, name="Many", member_ids=[m.public_id for m in members])
    # One lookup of the users, the rows of the group, the memberships in one bulk INSERT and the
    # system message (and its author's read pointer): 9 on PostgreSQL. SQLite splits the bulk
    # INSERT at its 999-parameter limit (7 more for 1,000 rows), per batch of ~140 rows, not per
    # member.
    assert len(queries) <= 17
