"""Who receives a conversation's events (`messaging.services.audience`): groups through their
bus group, direct and self conversations through their current members, read from the database
every time (no cache that goes stale when someone leaves), one query per send batch."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import services
from messaging.models import Membership
from messaging.services.audience import Audience, conversation_audience, conversation_audiences

from .conftest import direct, group, self_chat, send

pytestmark = pytest.mark.django_db


def user_groups(sent) -> list[set[str]]:
    return [set(groups) for groups, _event in sent]


def test_conversation_audience_by_kind(alice, bob, carol):
    chat, notes, room = direct(alice, bob), self_chat(alice), group(alice, bob, carol)
    assert set(conversation_audience(chat).user_ids) == {alice.id, bob.id}
    assert conversation_audience(chat).conversation_ids == ()
    assert conversation_audience(notes) == Audience(user_ids=(alice.id,))
    assert conversation_audience(room) == Audience(conversation_ids=(room.public_id,))


def test_direct_member_who_left_no_longer_receives_its_events(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    chat = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=True):
        first = send(alice, chat, "before")
    assert user_groups(bus_sent) == [{f"u.{alice.id}", f"u.{bob.id}"}]  # the same members as before

    Membership.objects.filter(conversation=chat, user=bob.user).update(
        left_at=timezone.now(),
        left_seq=first.seq,  # the model keeps the two together
    )
    bus_sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        send(alice, chat, "after")  # the batched path
        services.message_edit(user=alice.user, message_id=first.public_id, content="edited")
        services.reaction_add(user=alice.user, message_id=first.public_id, emoji="👍")
        services.conversation_mark_read(user=alice.user, conversation_id=chat.public_id)
    kinds = [event["type"] for _groups, event in bus_sent]
    assert kinds == [
        "message.created",
        "message.edited",
        "reaction.added",
        "conversation.unread",
        "conversation.read",
    ]
    assert user_groups(bus_sent) == [{f"u.{alice.id}"}] * len(kinds)


def _batch_sql(requests) -> list[str]:
    """The statements `message_send_many` runs for these requests (all must be stored)."""
    with CaptureQueriesContext(connection) as captured:
        results = services.message_send_many(requests=requests)
    assert all(r.error is None and r.created for r in results), results
    return [query["sql"] for query in captured.captured_queries]


def _batch(requests) -> int:
    """Queries `message_send_many` runs for these requests (all must be stored)."""
    return len(_batch_sql(requests))


def _reads_members(sql: str) -> bool:
    return f"JOIN {connection.ops.quote_name('accounts_user')} AS u" in sql


def test_batched_send_runs_as_many_queries_for_20_direct_messages_as_for_1(
    alice, bob, carol, dave, bus_sent, django_capture_on_commit_callbacks
):
    pairs = [(alice, direct(alice, bob)), (bob, direct(bob, carol)), (carol, direct(carol, dave))]
    pairs.append((dave, direct(dave, alice)))

    def requests(count: int, tag: str) -> list[services.SendRequest]:
        return [
            services.SendRequest(
                user=pairs[i % len(pairs)][0].user,
                conversation_id=pairs[i % len(pairs)][1].public_id,
                content=f"{tag} {i}",
                client_message_id=f"{tag}-{i}",
            )
            for i in range(count)
        ]

    _batch(requests(1, "warm-up"))
    with django_capture_on_commit_callbacks(execute=True):
        one = _batch(requests(1, "one"))
        twenty = _batch(requests(20, "twenty"))
    assert one == twenty
    # Every message still reached the two members of its own conversation.
    partners = (bob, carol, dave, alice)
    members = {
        chat.public_id: {f"u.{sender.id}", f"u.{partner.id}"}
        for (sender, chat), partner in zip(pairs, partners, strict=True)
    }
    assert len(bus_sent) == 21
    for groups, event in bus_sent:
        assert set(groups) == members[event["conversation"]["id"]]


def test_batched_send_to_groups_only_reads_no_members(alice, bob, carol):
    room, chat = group(alice, bob, carol), direct(alice, bob)
    send(alice, room, "warm-up")
    send(alice, chat, "warm-up")

    def batch(conversation, tag):
        return _batch_sql(
            [
                services.SendRequest(
                    user=alice.user,
                    conversation_id=conversation.public_id,
                    content=tag,
                    client_message_id=tag,
                )
            ]
        )

    to_room, to_bob = batch(room, "to the group"), batch(chat, "to bob")
    assert not any(_reads_members(sql) for sql in to_room)
    assert [_reads_members(sql) for sql in to_bob].count(True) == 1
    if connection.vendor == "postgresql":  # the read travels in the write's query
        assert len(to_room) == len(to_bob)
    else:
        assert len(to_room) == len(to_bob) - 1


def test_conversation_audiences_reads_all_direct_members_with_one_query(
    alice, bob, carol, django_assert_num_queries
):
    conversations = [direct(alice, bob), direct(bob, carol), self_chat(carol), group(alice, bob, carol)]
    with django_assert_num_queries(1):
        audiences = conversation_audiences(conversations)
    assert [set(audiences[c.pk].user_ids) for c in conversations[:3]] == [
        {alice.id, bob.id},
        {bob.id, carol.id},
        {carol.id},
    ]
    assert audiences[conversations[3].pk].conversation_ids == (conversations[3].public_id,)
    with django_assert_num_queries(0):
        conversation_audiences(conversations[3:])
