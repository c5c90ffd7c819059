"""The reads of messaging: the conversation list with unread counts, and keyset history."""

import pytest

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from messaging import selectors, services
from messaging.models import Conversation

from .conftest import direct, group, leave, self_chat, send, send_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_pages(settings):
    settings.CHAT = {**settings.CHAT, "HISTORY_PAGE_SIZE": 4, "HISTORY_MAX_PAGE_SIZE": 6}


def history(user, conversation, **kwargs) -> list[int]:
    _, messages = selectors.message_history(user=user.user, conversation_id=conversation.public_id, **kwargs)
    return [m.seq for m in messages]


def summary_of(user, conversation) -> selectors.ConversationSummary:
    (summary,) = [
        s for s in selectors.conversation_list_for_user(user=user.user) if s.id == conversation.public_id
    ]
    return summary


# conversation_list_for_user and unread_total


def test_conversation_list_counts_unread_messages_per_member(alice, bob):
    conversation = direct(alice, bob)
    send_many(alice, conversation, 3)
    assert (summary_of(bob, conversation).unread, summary_of(bob, conversation).last_read_seq) == (3, 0)
    assert summary_of(alice, conversation).unread == 0
    services.conversation_mark_read(user=bob.user, conversation_id=conversation.public_id, up_to_seq=2)
    summary = summary_of(bob, conversation)
    assert (summary.unread, summary.last_read_seq, summary.last_seq) == (1, 2, 3)


def test_unread_total_sums_unread_over_all_current_conversations(alice, bob, carol):
    send_many(bob, direct(alice, bob), 2)
    send_many(carol, direct(alice, carol), 3)
    send_many(carol, group(alice, bob, carol), 4)
    assert selectors.unread_total(user=alice.user) == 9
    assert selectors.unread_total(user=bob.user) == 4
    assert selectors.unread_total(user=carol.user) == 0


def test_unread_total_is_zero_without_conversations(alice):
    assert selectors.unread_total(user=alice.user) == 0


def test_conversations_left_are_neither_listed_nor_counted(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    leave(alice, conversation)
    assert conversation.public_id not in [s.id for s in selectors.conversation_list_for_user(user=alice.user)]
    assert selectors.unread_total(user=alice.user) == 0


def test_conversation_list_is_ordered_by_last_activity(alice, bob, carol, make_user):
    dave = make_user("Dave")
    with_bob, with_carol, with_dave = direct(alice, bob), direct(alice, carol), direct(alice, dave)
    send(alice, with_carol)
    send(dave, with_dave)
    send(bob, with_bob)
    ids = [s.id for s in selectors.conversation_list_for_user(user=alice.user)]
    # The self chat was created with the user, before any direct chat, and has no messages.
    assert ids == [with_bob.public_id, with_dave.public_id, with_carol.public_id, self_chat(alice).public_id]
    send(alice, with_carol)
    assert selectors.conversation_list_for_user(user=alice.user)[0].id == with_carol.public_id


def test_conversation_list_describes_partner_of_direct_chats_only(alice, bob):
    with_bob = direct(alice, bob)
    own = self_chat(alice)
    team = group(alice, bob)
    summaries = {s.id: s for s in selectors.conversation_list_for_user(user=alice.user)}
    assert (summaries[with_bob.public_id].partner_id, summaries[with_bob.public_id].partner_name) == (
        bob.id,
        "Bob",
    )
    assert summaries[with_bob.public_id].kind == Conversation.Kind.DIRECT
    for conversation in (own, team):
        assert (summaries[conversation.public_id].partner_id, summaries[conversation.public_id].title) == (
            None,
            None,
        )


def test_conversation_list_shows_the_title_of_groups(alice, bob):
    team = group(alice, bob)
    team.title = "Team"
    team.save(update_fields=["title"])
    assert summary_of(alice, team).title == "Team"
    assert selectors.conversation_summary_get(user=alice.user, conversation_id=team.public_id).title == "Team"


def test_conversation_list_filters_by_kind(alice, bob):
    direct(alice, bob)
    group(alice, bob)
    kinds = {s.kind for s in selectors.conversation_list_for_user(user=alice.user, kinds=("direct", "self"))}
    assert kinds == {"direct", "self"}


def test_conversation_list_is_bounded_by_the_configured_limit(alice, bob, carol, settings):
    direct(alice, bob)
    direct(alice, carol)
    settings.CHAT = {**settings.CHAT, "CONVERSATION_LIST_LIMIT": 2}
    assert len(selectors.conversation_list_for_user(user=alice.user)) == 2


@pytest.mark.parametrize("count", [1, 12])
def test_conversation_list_uses_a_constant_number_of_queries(
    alice, make_user, django_assert_max_num_queries, count
):
    for _ in range(count):
        other = make_user()
        send(other, direct(alice, other))
    group(alice, make_user())
    with django_assert_max_num_queries(2):
        summaries = selectors.conversation_list_for_user(user=alice.user)
    assert len(summaries) == count + 2
    assert all(s.partner_name for s in summaries if s.kind == Conversation.Kind.DIRECT)


def test_the_handshake_snapshot_is_the_list_and_every_group_in_two_reads(
    alice, bob, carol, make_user, settings, django_assert_num_queries
):
    older = group(alice, bob)
    send(bob, direct(alice, bob))
    newer = group(alice, carol)
    send(carol, newer)
    leave(alice, group(alice, carol))  # left: neither listed nor subscribed
    settings.CHAT = {**settings.CHAT, "CONVERSATION_LIST_LIMIT": 2}
    kinds = (Conversation.Kind.DIRECT, Conversation.Kind.GROUP)
    with django_assert_num_queries(2):  # memberships (rows, no models); partners
        snapshot = selectors.conversation_snapshot_for_user(user=alice.user, kinds=kinds)
    # Every group for the bus subscription, whatever the list's limit...
    assert set(snapshot.group_ids) == {older.public_id, newer.public_id}
    # ...and exactly the list the list selector gives.
    assert snapshot.summaries == selectors.conversation_list_for_user(user=alice.user, kinds=kinds)
    assert len(snapshot.summaries) == 2


def test_conversation_summary_get_matches_the_list_entry(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    summary = selectors.conversation_summary_get(user=alice.user, conversation_id=conversation.public_id)
    assert summary == summary_of(alice, conversation)


def test_conversation_summary_get_hides_foreign_and_left_conversations(alice, bob, carol):
    foreign = direct(bob, carol)
    left = direct(alice, carol)
    leave(alice, left)
    for conversation_id in (foreign.public_id, left.public_id, new_public_id(), 12):
        with pytest.raises(ApplicationError) as excinfo:
            selectors.conversation_summary_get(user=alice.user, conversation_id=conversation_id)
        assert excinfo.value.code == ErrorCode.NOT_FOUND


# message_history


@pytest.fixture
def ten(alice, bob) -> Conversation:
    conversation = direct(alice, bob)
    send_many(alice, conversation, 10)
    return conversation


def test_history_is_newest_first(alice, ten):
    assert history(alice, ten, limit=3) == [10, 9, 8]


def test_history_before_returns_older_messages(alice, ten):
    assert history(alice, ten, before=8, limit=3) == [7, 6, 5]
    assert history(alice, ten, before=3) == [2, 1]
    assert history(alice, ten, before=1) == []


def test_history_after_returns_newer_messages_oldest_first(alice, ten):
    assert history(alice, ten, after=7) == [8, 9, 10]
    assert history(alice, ten, after=2, limit=3) == [3, 4, 5]
    assert history(alice, ten, after=10) == []
    assert history(alice, ten, after=0, limit=2) == [1, 2]


def test_history_between_before_and_after(alice, ten):
    assert history(alice, ten, after=2, before=6) == [3, 4, 5]


def test_history_default_page_size_and_cap(alice, ten, small_pages):
    assert history(alice, ten) == [10, 9, 8, 7]
    assert history(alice, ten, limit=100) == [10, 9, 8, 7, 6, 5]
    assert history(alice, ten, limit=6, after=0) == [1, 2, 3, 4, 5, 6]


def test_history_returns_messages_with_their_senders(alice, bob):
    conversation = direct(alice, bob)
    send(alice, conversation, "from alice")
    send(bob, conversation, "from bob")
    result, messages = selectors.message_history(user=bob.user, conversation_id=conversation.public_id)
    assert result.pk == conversation.pk
    assert [(m.sender.display_name, m.content) for m in messages] == [
        ("Bob", "from bob"),
        ("Alice", "from alice"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"before": -1}, "before"),
        ({"before": "3"}, "before"),
        ({"before": True}, "before"),
        ({"after": -1}, "after"),
        ({"after": 2.0}, "after"),
    ],
    ids=repr,
)
def test_history_refuses_bad_paging_arguments(alice, ten, kwargs, field):
    with pytest.raises(ApplicationError) as excinfo:
        history(alice, ten, **kwargs)
    assert excinfo.value.code == ErrorCode.INVALID
    assert excinfo.value.extra == {"field": field}


def test_non_member_cannot_read_history(carol, ten):
    with pytest.raises(ApplicationError) as excinfo:
        history(carol, ten)
    assert excinfo.value.code == ErrorCode.NOT_FOUND


def test_history_of_mismatched_kind_is_not_found(alice, ten):
    with pytest.raises(ApplicationError) as excinfo:
        history(alice, ten, kind=Conversation.Kind.GROUP)
    assert excinfo.value.code == ErrorCode.NOT_FOUND


def test_member_who_left_reads_history_only_up_to_leaving(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 4)
    leave(alice, conversation)
    send_many(bob, conversation, 3)
    assert history(alice, conversation) == [4, 3, 2, 1]
    assert history(alice, conversation, after=2) == [3, 4]
    assert history(alice, conversation, after=4) == []
    assert history(alice, conversation, before=3) == [2, 1]
    assert history(bob, conversation, limit=2) == [7, 6]


# message_page cursors


def page(user, conversation, **kwargs) -> selectors.MessagePage:
    return selectors.message_page(user=user.user, conversation_id=conversation.public_id, **kwargs)


def test_message_page_points_to_older_messages_until_the_first(alice, ten):
    seen, before = [], None
    while True:
        result = page(alice, ten, before=before, limit=4)
        seen += [m.seq for m in result.messages]
        assert result.next_after is None
        if result.next_before is None:
            break
        before = result.next_before
    assert seen == list(range(10, 0, -1))


def test_message_page_reaching_seq_one_has_no_older_cursor_even_when_full(alice, ten):
    assert page(alice, ten, before=6, limit=5).next_before is None
    assert page(alice, ten, before=7, limit=5).next_before == 2


def test_message_page_points_to_newer_messages_when_catching_up(alice, ten):
    seen, after = [], 0
    while after is not None:
        result = page(alice, ten, after=after, limit=4)
        seen += [m.seq for m in result.messages]
        assert result.next_before is None
        after = result.next_after
    assert seen == list(range(1, 11))


def test_message_page_of_empty_conversation_has_no_cursors(alice, bob):
    result = page(alice, direct(alice, bob))
    assert (result.messages, result.next_before, result.next_after) == ([], None, None)
