"""Receipts and unread counts in the services and selectors: the read pointer's forms, seen-by,
private receipts, delivered receipts, the reader's own counts, privacy settings, and the
audiences of typing and presence."""

import json

import pytest
from django.utils import timezone

from accounts import events as account_events
from accounts import services as account_services
from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from messaging import events, selectors, services
from messaging.models import Membership
from tests.messaging.conftest import direct, group, leave, read_seq, self_chat, send, send_many

pytestmark = pytest.mark.django_db


def mark_read(chat_user, conversation, **kwargs):
    return services.conversation_mark_read(
        user=chat_user.user, conversation_id=conversation.public_id, **kwargs
    )


def receipts_off(chat_user) -> None:
    account_services.user_settings_update(user=chat_user.user, read_receipts_enabled=False)
    chat_user.user.refresh_from_db()


def published(bus_sent, kind: str) -> list[tuple[set[str], dict]]:
    return [(set(groups), event) for groups, event in bus_sent if event["type"] == kind]


# --- the read pointer's forms ----------------------------------------------------------------


def test_mark_read_with_a_list_of_message_ids_moves_to_the_newest_of_them(alice, bob):
    conversation = direct(alice, bob)
    messages = send_many(bob, conversation, 5)
    _, pointer = mark_read(alice, conversation, message_ids=[messages[1].public_id, messages[3].public_id])
    assert pointer == 4
    assert read_seq(alice, conversation) == 4


def test_mark_read_with_the_last_message_id(alice, bob):
    conversation = direct(alice, bob)
    messages = send_many(bob, conversation, 3)
    _, pointer = mark_read(alice, conversation, last_message_id=messages[1].public_id)
    assert pointer == 2


def test_mark_read_by_message_id_never_moves_backwards(alice, bob):
    conversation = direct(alice, bob)
    messages = send_many(bob, conversation, 3)
    mark_read(alice, conversation)
    _, pointer = mark_read(alice, conversation, last_message_id=messages[0].public_id)
    assert pointer == 3


@pytest.mark.parametrize("form", ["message_ids", "last_message_id"])
def test_mark_read_with_a_message_of_another_conversation_is_not_found_and_moves_nothing(
    alice, bob, carol, form
):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    elsewhere = send(carol, direct(alice, carol))
    value = [elsewhere.public_id] if form == "message_ids" else elsewhere.public_id
    with pytest.raises(ApplicationError) as excinfo:
        mark_read(alice, conversation, **{form: value})
    assert (excinfo.value.code, excinfo.value.extra["field"]) == (ErrorCode.NOT_FOUND, form)
    assert read_seq(alice, conversation) == 0


def test_mark_read_with_one_unknown_id_among_known_ones_moves_nothing(alice, bob):
    conversation = direct(alice, bob)
    messages = send_many(bob, conversation, 2)
    with pytest.raises(ApplicationError) as excinfo:
        mark_read(alice, conversation, message_ids=[messages[1].public_id, new_public_id()])
    assert excinfo.value.code == ErrorCode.NOT_FOUND
    assert read_seq(alice, conversation) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"message_ids": []},
        {"message_ids": "not-a-list"},
        {"message_ids": [12]},
        {"message_ids": ["0" * 24] * 201},
        {"last_message_id": 12},
        {"up_to_seq": 1, "last_message_id": "0" * 24},
        {"message_ids": ["0" * 24], "last_message_id": "0" * 24},
    ],
    ids=["empty", "string", "ints", "too-many", "id-not-a-string", "seq-and-id", "ids-and-id"],
)
def test_mark_read_refuses_malformed_or_mixed_forms(alice, bob, kwargs):
    conversation = direct(alice, bob)
    send(bob, conversation)
    with pytest.raises(ApplicationError) as excinfo:
        mark_read(alice, conversation, **kwargs)
    assert excinfo.value.code == ErrorCode.INVALID
    assert read_seq(alice, conversation) == 0


# --- the reader's own counts -------------------------------------------------------------------


def test_mark_read_tells_only_the_reader_their_unread_counts_here_and_in_total(
    alice, bob, carol, bus_sent, django_capture_on_commit_callbacks
):
    with_bob, with_carol = direct(alice, bob), direct(alice, carol)
    send_many(bob, with_bob, 3)
    send_many(carol, with_carol, 2)
    with django_capture_on_commit_callbacks(execute=True):
        mark_read(alice, with_bob, up_to_seq=1)
    ((groups, event),) = published(bus_sent, "conversation.unread")
    assert groups == {f"u.{alice.id}"}
    assert event == {
        "type": "conversation.unread",
        "actor": alice.id,
        "conversation": {"id": with_bob.public_id, "kind": "direct"},
        "seq": 1,
        "unread": 2,
        "unread_total": 4,
    }
    assert selectors.unread_total(user=alice.user) == 4


def test_sending_counts_as_reading_for_the_unread_total(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    send(alice, conversation)
    assert selectors.unread_total(user=alice.user) == 0
    assert selectors.unread_total(user=bob.user) == 1


def test_unread_total_leaves_out_conversations_the_user_left(alice, bob, carol):
    conversation = group(alice, bob, carol)
    send_many(bob, conversation, 3)
    leave(alice, conversation)
    send_many(bob, conversation, 2)
    assert selectors.unread_total(user=alice.user) == 0
    assert selectors.unread_total(user=carol.user) == 5


# --- private receipts ------------------------------------------------------------------------


def test_reader_with_receipts_off_moves_their_pointer_but_tells_nobody_else(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    receipts_off(alice)
    with django_capture_on_commit_callbacks(execute=True):
        _, pointer = mark_read(alice, conversation)
    assert pointer == 2
    assert [event["type"] for _groups, event in bus_sent] == ["conversation.unread"]
    assert {g for groups, _event in bus_sent for g in groups} == {f"u.{alice.id}"}


def test_group_reader_with_receipts_off_publishes_no_read_event(
    alice, bob, carol, bus_sent, django_capture_on_commit_callbacks
):
    conversation = group(alice, bob, carol)
    send(bob, conversation)
    receipts_off(carol)
    with django_capture_on_commit_callbacks(execute=True):
        mark_read(carol, conversation)
    assert published(bus_sent, "conversation.read") == []


def test_receipts_setting_is_read_from_the_database_not_from_a_stale_user_object(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    send(bob, conversation)
    stale = User.objects.get(pk=alice.user.pk)  # what a long-lived connection holds
    account_services.user_settings_update(user=alice.user, read_receipts_enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_mark_read(user=stale, conversation_id=conversation.public_id)
    assert published(bus_sent, "conversation.read") == []


def test_history_shows_others_read_status_only_when_both_have_receipts_on(alice, bob, carol):
    conversation = group(alice, bob, carol)
    send_many(bob, conversation, 2)
    mark_read(alice, conversation)
    mark_read(carol, conversation, up_to_seq=1)

    def pointers(viewer):
        return selectors.conversation_page(
            user=viewer.user, conversation_id=conversation.public_id, kind="group"
        ).read_pointers

    assert pointers(bob) == {alice.id: 2, bob.id: 2, carol.id: 1}
    receipts_off(carol)
    # Carol's pointer is hidden from the others ...
    assert pointers(bob) == {alice.id: 2, bob.id: 2}
    # ... and Carol sees only her own.
    assert pointers(carol) == {carol.id: 1}


# --- seen by ---------------------------------------------------------------------------------


def test_seen_by_lists_readers_and_receivers_but_never_the_sender(alice, bob, carol, make_user):
    dave = make_user("Dave")
    conversation = group(alice, bob, carol, dave)
    first, second = send_many(alice, conversation, 2)
    mark_read(bob, conversation)  # read both
    services.conversation_mark_delivered(user=carol.user, conversation_id=conversation.public_id)
    seen = selectors.message_seen_by(
        user=alice.user, conversation_id=conversation.public_id, message_id=second.public_id
    )
    assert [r.id for r in seen.seen_by] == [bob.id]
    assert [r.display_name for r in seen.delivered_to] == ["Carol"]
    assert (seen.seen_count, seen.delivered_count) == (1, 1)
    # By seq, from another member's point of view.
    by_seq = selectors.message_seen_by(user=dave.user, conversation_id=conversation.public_id, seq=first.seq)
    assert by_seq.message.pk == first.pk
    assert [r.id for r in by_seq.seen_by] == [bob.id]


def test_seen_by_leaves_out_members_with_receipts_off(alice, bob, carol):
    conversation = group(alice, bob, carol)
    message = send(alice, conversation)
    mark_read(bob, conversation)
    mark_read(carol, conversation)
    receipts_off(carol)
    seen = selectors.message_seen_by(
        user=alice.user, conversation_id=conversation.public_id, message_id=message.public_id
    )
    assert [r.id for r in seen.seen_by] == [bob.id]


def test_viewer_with_receipts_off_sees_nobody_s_receipts(alice, bob):
    conversation = direct(alice, bob)
    message = send(alice, conversation)
    receipts_off(alice)
    with pytest.raises(ApplicationError) as excinfo:
        selectors.message_seen_by(
            user=alice.user, conversation_id=conversation.public_id, message_id=message.public_id
        )
    assert excinfo.value.code == ErrorCode.PERMISSION_DENIED


@pytest.mark.parametrize("case", ["unknown message", "other conversation", "non-member", "no message named"])
def test_seen_by_refuses_what_the_viewer_cannot_name(alice, bob, carol, case):
    conversation = direct(alice, bob)
    send(bob, conversation)
    other = send(carol, direct(bob, carol))
    kwargs = {
        "unknown message": {"message_id": new_public_id()},
        "other conversation": {"message_id": other.public_id},
        "non-member": {"message_id": other.public_id},
        "no message named": {},
    }[case]
    conversation_id = other.conversation.public_id if case == "non-member" else conversation.public_id
    with pytest.raises(ApplicationError) as excinfo:
        selectors.message_seen_by(user=alice.user, conversation_id=conversation_id, **kwargs)
    expected = ErrorCode.INVALID if case == "no message named" else ErrorCode.NOT_FOUND
    assert excinfo.value.code == expected


# --- delivered receipts ------------------------------------------------------------------------


def test_delivered_pointer_moves_forward_only_and_stops_at_the_newest(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 3)
    deliver = services.conversation_mark_delivered
    assert deliver(user=alice.user, conversation_id=conversation.public_id, up_to_seq=2)[1] == 2
    assert deliver(user=alice.user, conversation_id=conversation.public_id, up_to_seq=1)[1] == 2
    assert deliver(user=alice.user, conversation_id=conversation.public_id, up_to_seq=99)[1] == 3
    assert Membership.objects.get(conversation=conversation, user=alice.user).last_delivered_seq == 3
    assert read_seq(alice, conversation) == 0  # delivered is not read


def test_delivered_is_published_to_the_senders_of_newly_covered_messages_only(
    alice, bob, carol, make_user, bus_sent, django_capture_on_commit_callbacks
):
    dave = make_user("Dave")
    conversation = group(alice, bob, carol, dave)
    send(bob, conversation)  # seq 1, read by Dave below
    send(carol, conversation)  # seq 2
    send(alice, conversation)  # seq 3
    services.conversation_mark_read(user=dave.user, conversation_id=conversation.public_id, up_to_seq=1)
    bus_sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_mark_delivered(user=dave.user, conversation_id=conversation.public_id)
    ((groups, event),) = published(bus_sent, "conversation.delivered")
    # Bob's message was already acknowledged by the read receipt.
    assert groups == {f"u.{carol.id}", f"u.{alice.id}"}
    assert event == {
        "type": "conversation.delivered",
        "actor": dave.id,
        "conversation": {"id": conversation.public_id, "kind": "group"},
        "seq": 3,
    }


def test_delivered_publishes_nothing_when_nothing_moved_or_receipts_are_off(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_mark_delivered(user=alice.user, conversation_id=conversation.public_id)
        services.conversation_mark_delivered(user=alice.user, conversation_id=conversation.public_id)
    assert len(published(bus_sent, "conversation.delivered")) == 1
    send(bob, conversation)
    receipts_off(alice)
    bus_sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _, pointer = services.conversation_mark_delivered(
            user=alice.user, conversation_id=conversation.public_id
        )
    assert pointer == 3
    assert bus_sent == []


def test_own_messages_are_not_delivered_to_oneself(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    conversation = direct(alice, bob)
    send(alice, conversation)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_mark_delivered(user=alice.user, conversation_id=conversation.public_id)
    assert bus_sent == []


@pytest.mark.parametrize("seq", [-1, True, "2", 1.5])
def test_delivered_refuses_a_bad_seq(alice, bob, seq):
    conversation = direct(alice, bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.conversation_mark_delivered(
            user=alice.user, conversation_id=conversation.public_id, up_to_seq=seq
        )
    assert excinfo.value.code == ErrorCode.INVALID


def test_non_member_cannot_report_delivery(alice, bob, carol):
    conversation = direct(bob, carol)
    with pytest.raises(ApplicationError) as excinfo:
        services.conversation_mark_delivered(user=alice.user, conversation_id=conversation.public_id)
    assert excinfo.value.code == ErrorCode.NOT_FOUND


# --- privacy settings and last seen ------------------------------------------------------------


def test_settings_update_saves_and_tells_the_users_own_connections(
    alice, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        user = account_services.user_settings_update(user=alice.user, presence_hidden=True)
    assert (user.presence_hidden, user.read_receipts_enabled) == (True, True)
    alice.user.refresh_from_db()
    assert alice.user.presence_hidden is True
    assert bus_sent == [
        (
            [f"u.{alice.id}"],
            {
                "type": "user.settings_changed",
                "actor": alice.id,
                "user_id": alice.id,
                "presence_hidden": True,
                "read_receipts_enabled": True,
            },
        )
    ]


def test_settings_update_without_changes_publishes_nothing(
    alice, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        account_services.user_settings_update(user=alice.user)
    assert bus_sent == []


@pytest.mark.parametrize("value", [1, "true", "yes"])
def test_settings_must_be_booleans(alice, value):
    with pytest.raises(ApplicationError) as excinfo:
        account_services.user_settings_update(user=alice.user, read_receipts_enabled=value)
    assert excinfo.value.code == ErrorCode.INVALID
    alice.user.refresh_from_db()
    assert alice.user.read_receipts_enabled is True


def test_last_seen_only_moves_forward(alice, bob):
    now = timezone.now()
    earlier = now - timezone.timedelta(minutes=5)
    assert account_services.user_last_seen_record(user_ids=[alice.id, bob.id], at=now) == 2
    assert account_services.user_last_seen_record(user_ids=[alice.id], at=earlier) == 0
    alice.user.refresh_from_db()
    assert alice.user.last_seen_at == now


# --- audiences -----------------------------------------------------------------------------------


def test_presence_audience_is_everyone_sharing_a_chat_found_in_one_query(
    alice, bob, carol, make_user, django_assert_num_queries
):
    dave, erin = make_user("Dave"), make_user("Erin")
    direct(alice, bob)
    group(alice, carol, dave)
    former = group(alice, erin)
    leave(erin, former)
    self_chat(alice)
    direct(bob, erin)  # not Alice's
    with django_assert_num_queries(1):
        audience = selectors.co_member_ids(user_id=alice.id)
    assert sorted(audience) == sorted([bob.id, carol.id, dave.id])


def test_presence_is_pushed_to_small_groups_only_and_large_groups_can_still_fetch_it(
    alice, bob, carol, make_user, settings
):
    settings.CHAT = {**settings.CHAT, "PRESENCE_PUSH_GROUP_MAX": 3}
    dave, erin = make_user("Dave"), make_user("Erin")
    group(alice, bob, carol)  # 3 members: pushed
    group(alice, dave, erin, bob)  # 4 members: over the limit, not pushed
    assert sorted(selectors.co_member_ids(user_id=alice.id)) == sorted([bob.id, carol.id])
    # Members of the large group still see Alice's presence on request.
    assert selectors.co_members_among(user=alice.user, user_ids=[dave.id, erin.id]) == {dave.id, erin.id}


def test_co_members_among_keeps_only_people_sharing_a_chat(alice, bob, carol, make_user):
    dave = make_user("Dave")
    direct(alice, bob)
    group(alice, carol)
    assert selectors.co_members_among(user=alice.user, user_ids=[bob.id, carol.id, dave.id, alice.id]) == {
        bob.id,
        carol.id,
    }


def test_typing_target_of_a_direct_chat_is_the_other_member(alice, bob):
    conversation = direct(alice, bob)
    target = selectors.conversation_typing_target(user=alice.user, conversation_id=conversation.public_id)
    assert (target.kind, target.peer_ids) == ("direct", (bob.id,))


def test_typing_target_of_a_group_is_its_bus_group(alice, bob, carol):
    conversation = group(alice, bob, carol)
    target = selectors.conversation_typing_target(user=alice.user, conversation_id=conversation.public_id)
    assert (target.conversation_id, target.kind, target.peer_ids) == (conversation.public_id, "group", ())


@pytest.mark.parametrize("case", ["self", "non-member", "left"])
def test_typing_needs_a_chat_with_somebody_the_user_is_in(alice, bob, carol, case):
    if case == "self":
        conversation_id, code = self_chat(alice).public_id, ErrorCode.INVALID
    elif case == "non-member":
        conversation_id, code = direct(bob, carol).public_id, ErrorCode.NOT_FOUND
    else:
        conversation = group(alice, bob)
        leave(alice, conversation)
        conversation_id, code = conversation.public_id, ErrorCode.NOT_FOUND
    with pytest.raises(ApplicationError) as excinfo:
        selectors.conversation_typing_target(user=alice.user, conversation_id=conversation_id)
    assert excinfo.value.code == code


# --- every new event builder survives JSON -------------------------------------------------------


def test_every_new_event_builder_payload_survives_json(alice, bob):
    conversation = direct(alice, bob)
    payloads = [
        events.conversation_unread(
            conversation=conversation, reader=alice.user, seq=1, unread=0, unread_total=3
        ),
        events.conversation_delivered(conversation=conversation, recipient=alice.user, seq=1),
        events.typing(
            conversation_id=conversation.public_id, kind="direct", user=alice.user, started=True, expires_in=6
        ),
        events.typing(
            conversation_id=conversation.public_id,
            kind="direct",
            user=alice.user,
            started=False,
            expires_in=6,
        ),
        account_events.user_settings_changed(
            user_id=alice.id, presence_hidden=True, read_receipts_enabled=False
        ),
        account_events.presence_changed(
            user_id=alice.id, state="offline", last_seen="2026-11-21T07:15:42.318Z"
        ),
        account_events.presence_changed(user_id=alice.id, state="foreground", last_seen=None),
    ]
    for payload in payloads:
        assert json.loads(json.dumps(payload)) == payload


def test_presence_audiences_of_several_users_come_from_one_query_each_their_own(
    alice, bob, carol, make_user, settings, django_assert_num_queries
):
    settings.CHAT = {**settings.CHAT, "PRESENCE_PUSH_GROUP_MAX": 3}
    dave, erin, frank = make_user("Dave"), make_user("Erin"), make_user("Frank")
    direct(alice, bob)
    group(alice, carol, dave)  # 3 members: pushed
    group(bob, dave, erin, frank)  # 4 members: over the limit
    former = group(carol, erin)
    leave(erin, former)
    self_chat(frank)
    with django_assert_num_queries(1):
        audiences = selectors.co_member_ids_many(user_ids=[alice.id, bob.id, carol.id, erin.id, frank.id])
    assert {user: sorted(ids) for user, ids in audiences.items()} == {
        alice.id: sorted([bob.id, carol.id, dave.id]),
        bob.id: [alice.id],
        carol.id: sorted([alice.id, dave.id]),
    }
    assert selectors.co_member_ids_many(user_ids=[]) == {}
