"""The write services of messaging: conversations, sending, read pointers. Every refusal is
checked to leave nothing behind."""

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from messaging import services
from messaging.models import Conversation, Membership, Message

from .conftest import ban, direct, group, leave, read_seq, self_chat, send, send_many, user_unverified

pytestmark = pytest.mark.django_db


def assert_error(excinfo, code: ErrorCode, field: str | None = None) -> None:
    assert excinfo.value.code == code
    if field is not None:
        assert excinfo.value.extra.get("field") == field


def assert_nothing_sent(conversation: Conversation) -> None:
    conversation.refresh_from_db()
    assert conversation.last_seq == 0
    assert not Message.objects.filter(conversation=conversation).exists()


# self_conversation_ensure


def test_self_conversation_ensure_is_idempotent(alice):
    first = services.self_conversation_ensure(user=alice.user)
    second = services.self_conversation_ensure(user=alice.user)
    assert first.pk == second.pk
    assert first.kind == Conversation.Kind.SELF
    assert Conversation.objects.filter(kind=Conversation.Kind.SELF, created_by=alice.user).count() == 1
    membership = Membership.objects.get(conversation=first)
    assert membership.user_id == alice.user.pk
    assert membership.role == Membership.Role.OWNER


def test_self_conversations_of_two_users_are_distinct(alice, bob):
    assert self_chat(alice).pk != self_chat(bob).pk


# direct_conversation_get_or_create


def test_direct_conversation_is_created_once_per_pair_in_either_direction(alice, bob):
    conversation, partner, created = services.direct_conversation_get_or_create(
        user=alice.user, other_user_id=bob.id
    )
    assert created is True
    assert partner.pk == bob.user.pk
    assert conversation.kind == Conversation.Kind.DIRECT

    reverse, partner, created = services.direct_conversation_get_or_create(
        user=bob.user, other_user_id=alice.id
    )
    assert (reverse.pk, partner.pk, created) == (conversation.pk, alice.user.pk, False)
    again, _, created = services.direct_conversation_get_or_create(user=alice.user, other_user_id=bob.id)
    assert (again.pk, created) == (conversation.pk, False)

    assert Conversation.objects.filter(kind=Conversation.Kind.DIRECT).count() == 1
    assert set(Membership.objects.filter(conversation=conversation).values_list("user_id", flat=True)) == {
        alice.user.pk,
        bob.user.pk,
    }


def test_each_pair_gets_its_own_direct_conversation(alice, bob, carol):
    assert len({direct(alice, bob).pk, direct(alice, carol).pk, direct(bob, carol).pk}) == 3


def test_direct_conversation_with_oneself_is_refused(alice):
    with pytest.raises(ApplicationError) as excinfo:
        services.direct_conversation_get_or_create(user=alice.user, other_user_id=alice.id)
    assert_error(excinfo, ErrorCode.INVALID)
    assert not Conversation.objects.filter(kind=Conversation.Kind.DIRECT).exists()


@pytest.mark.parametrize(
    "other_user_id",
    [new_public_id(), "not-an-id", "A" * 24, "", 12, None, True, ["x"], {"$ne": ""}],
    ids=["unknown", "malformed", "uppercase", "empty", "int", "none", "bool", "list", "dict"],
)
def test_direct_conversation_with_unknown_user_is_not_found(alice, other_user_id):
    with pytest.raises(ApplicationError) as excinfo:
        services.direct_conversation_get_or_create(user=alice.user, other_user_id=other_user_id)
    assert_error(excinfo, ErrorCode.NOT_FOUND, "user_id")
    assert not Conversation.objects.filter(kind=Conversation.Kind.DIRECT).exists()


def test_direct_conversation_with_unverified_user_is_not_found(alice):
    other = user_unverified()
    with pytest.raises(ApplicationError) as excinfo:
        services.direct_conversation_get_or_create(user=alice.user, other_user_id=other.public_id)
    assert_error(excinfo, ErrorCode.NOT_FOUND, "user_id")
    assert not Conversation.objects.filter(kind=Conversation.Kind.DIRECT).exists()


def test_direct_conversation_with_banned_user_is_not_found(alice, bob):
    ban(bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.direct_conversation_get_or_create(user=alice.user, other_user_id=bob.id)
    assert_error(excinfo, ErrorCode.NOT_FOUND, "user_id")
    assert not Conversation.objects.filter(kind=Conversation.Kind.DIRECT).exists()


def test_direct_conversation_with_deactivated_user_is_not_found(alice, bob):
    bob.user.is_active = False
    bob.user.save(update_fields=["is_active"])
    with pytest.raises(ApplicationError) as excinfo:
        services.direct_conversation_get_or_create(user=alice.user, other_user_id=bob.id)
    assert_error(excinfo, ErrorCode.NOT_FOUND, "user_id")


def test_existing_direct_conversation_with_since_banned_user_is_not_returned(alice, bob):
    direct(alice, bob)
    ban(bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.direct_conversation_get_or_create(user=alice.user, other_user_id=bob.id)
    assert_error(excinfo, ErrorCode.NOT_FOUND)


# message_send: sequence numbers


def test_message_send_allocates_gapless_sequence_numbers_from_one(alice, bob):
    conversation = direct(alice, bob)
    messages = [send(alice if i % 2 else bob, conversation, f"m{i}") for i in range(6)]
    assert [m.seq for m in messages] == [1, 2, 3, 4, 5, 6]
    conversation.refresh_from_db()
    assert conversation.last_seq == 6
    assert conversation.last_message_at == messages[-1].created_at
    stored = list(
        Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "content")
    )
    assert stored == [(i + 1, f"m{i}") for i in range(6)]


def test_sequence_numbers_are_per_conversation(alice, bob):
    send_many(alice, direct(alice, bob), 3)
    assert send(alice, self_chat(alice)).seq == 1


def test_message_send_returns_created_and_stores_sender_and_kind(alice, bob):
    message, created = services.message_send(
        user=alice.user, conversation_id=direct(alice, bob).public_id, content="  hi  "
    )
    assert created is True
    message.refresh_from_db()
    assert (message.sender_id, message.kind, message.content) == (alice.user.pk, Message.Kind.TEXT, "  hi  ")
    assert message.client_message_id is None


def test_message_send_accepts_content_of_maximum_length(alice):
    content = "x" * settings.CHAT["MAX_MESSAGE_LENGTH"]
    assert send(alice, self_chat(alice), content).content == content


# message_send: idempotency


def test_retry_with_same_client_message_id_returns_the_original(alice, bob):
    conversation = direct(alice, bob)
    first, created = services.message_send(
        user=alice.user, conversation_id=conversation.public_id, content="hi", client_message_id="c-1"
    )
    assert created is True
    retry, created = services.message_send(
        user=alice.user, conversation_id=conversation.public_id, content="hi again", client_message_id="c-1"
    )
    assert created is False
    assert (retry.pk, retry.seq, retry.content) == (first.pk, 1, "hi")
    conversation.refresh_from_db()
    assert conversation.last_seq == 1
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_same_client_message_id_from_another_sender_is_a_separate_message(alice, bob):
    conversation = direct(alice, bob)
    first = send(alice, conversation, client_message_id="c-1")
    second, created = services.message_send(
        user=bob.user, conversation_id=conversation.public_id, content="hello", client_message_id="c-1"
    )
    assert created is True
    assert second.pk != first.pk
    assert (first.seq, second.seq) == (1, 2)


def test_same_client_message_id_in_another_conversation_is_a_separate_message(alice, bob):
    first = send(alice, direct(alice, bob), client_message_id="c-1")
    second = send(alice, self_chat(alice), client_message_id="c-1")
    assert first.pk != second.pk


def test_messages_without_client_message_id_are_never_merged(alice):
    conversation = self_chat(alice)
    assert [send(alice, conversation, "same").seq for _ in range(3)] == [1, 2, 3]


# message_send: validation


@pytest.mark.parametrize(
    "content",
    [12, 1.5, None, True, ["x"], {"$ne": ""}, "", "   ", "\n\t ", "a\x00b", "\ud800"],
    ids=["int", "float", "none", "bool", "list", "dict", "empty", "spaces", "whitespace", "nul", "surrogate"],
)
def test_message_send_refuses_invalid_content_and_stores_nothing(alice, bob, content):
    conversation = direct(alice, bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.message_send(user=alice.user, conversation_id=conversation.public_id, content=content)
    assert_error(excinfo, ErrorCode.INVALID, "content")
    assert_nothing_sent(conversation)


def test_message_send_refuses_content_over_the_maximum_length(alice, bob):
    conversation = direct(alice, bob)
    maximum = settings.CHAT["MAX_MESSAGE_LENGTH"]
    with pytest.raises(ApplicationError) as excinfo:
        services.message_send(
            user=alice.user, conversation_id=conversation.public_id, content="x" * (maximum + 1)
        )
    assert_error(excinfo, ErrorCode.INVALID, "content")
    assert excinfo.value.extra["max_length"] == maximum
    assert_nothing_sent(conversation)


@pytest.mark.parametrize(
    "client_message_id",
    ["", "x" * 65, 12, True, ["c"], {"c": 1}, "c\x00", "\udfff"],
    ids=["empty", "too-long", "int", "bool", "list", "dict", "nul", "surrogate"],
)
def test_message_send_refuses_invalid_client_message_id_and_stores_nothing(alice, bob, client_message_id):
    conversation = direct(alice, bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.message_send(
            user=alice.user,
            conversation_id=conversation.public_id,
            content="hi",
            client_message_id=client_message_id,
        )
    assert_error(excinfo, ErrorCode.INVALID, "client_message_id")
    assert_nothing_sent(conversation)


def test_client_message_id_of_maximum_length_is_accepted(alice):
    assert send(alice, self_chat(alice), client_message_id="c" * 64).client_message_id == "c" * 64


# message_send: access


def test_non_member_cannot_send(alice, bob, carol):
    conversation = direct(bob, carol)
    with pytest.raises(ApplicationError) as excinfo:
        send(alice, conversation)
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    assert_nothing_sent(conversation)


def test_cannot_send_into_another_users_self_conversation(alice, bob):
    conversation = self_chat(bob)
    with pytest.raises(ApplicationError) as excinfo:
        send(alice, conversation)
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    assert_nothing_sent(conversation)


@pytest.mark.parametrize(
    "conversation_id",
    [new_public_id(), "not-an-id", "A" * 24, "", 12, None, ["x"], {"$ne": ""}],
    ids=["unknown", "malformed", "uppercase", "empty", "int", "none", "list", "dict"],
)
def test_unknown_or_malformed_conversation_id_is_not_found_and_stores_nothing(alice, conversation_id):
    with pytest.raises(ApplicationError) as excinfo:
        services.message_send(user=alice.user, conversation_id=conversation_id, content="hi")
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    assert not Message.objects.exists()


def test_not_found_is_the_same_for_unknown_and_foreign_conversations(alice, bob, carol):
    errors = []
    for conversation_id in (new_public_id(), direct(bob, carol).public_id):
        with pytest.raises(ApplicationError) as excinfo:
            services.message_send(user=alice.user, conversation_id=conversation_id, content="hi")
        errors.append(excinfo.value.as_dict())
    assert errors[0] == errors[1]


def test_send_with_mismatched_kind_is_not_found(alice, bob):
    conversation = direct(alice, bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.message_send(
            user=alice.user, conversation_id=conversation.public_id, content="hi", kind=Conversation.Kind.SELF
        )
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    assert_nothing_sent(conversation)


def test_send_with_matching_kind_is_accepted(alice, bob):
    conversation = direct(alice, bob)
    message, created = services.message_send(
        user=alice.user, conversation_id=conversation.public_id, content="hi", kind=Conversation.Kind.DIRECT
    )
    assert created and message.seq == 1


def test_member_who_left_cannot_send(alice, bob):
    conversation = direct(alice, bob)
    send(alice, conversation)
    leave(alice, conversation)
    with pytest.raises(ApplicationError) as excinfo:
        send(alice, conversation)
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    conversation.refresh_from_db()
    assert conversation.last_seq == 1


def test_member_who_left_cannot_retry_an_earlier_send(alice, bob):
    conversation = direct(alice, bob)
    send(alice, conversation, client_message_id="c-1")
    leave(alice, conversation)
    with pytest.raises(ApplicationError) as excinfo:
        send(alice, conversation, client_message_id="c-1")
    assert_error(excinfo, ErrorCode.NOT_FOUND)


def test_a_blocked_conversation_refuses_sends_from_both_members(alice, bob):
    conversation = direct(alice, bob)
    send(alice, conversation)
    services.conversation_block(user=bob.user, conversation_id=conversation.public_id, blocked=True)
    for member in (alice, bob):
        with pytest.raises(ApplicationError) as excinfo:
            send(member, conversation)
        assert_error(excinfo, ErrorCode.PERMISSION_DENIED)
        assert excinfo.value.message == "This conversation is blocked."
    conversation.refresh_from_db()
    assert conversation.last_seq == 1


def test_unblocking_lets_both_members_send_again(alice, bob):
    conversation = direct(alice, bob)
    services.conversation_block(user=alice.user, conversation_id=conversation.public_id, blocked=True)
    services.conversation_block(user=alice.user, conversation_id=conversation.public_id, blocked=False)
    assert [send(member, conversation).seq for member in (alice, bob)] == [1, 2]


def test_a_retry_of_a_message_sent_before_the_block_returns_the_original(alice, bob):
    conversation = direct(alice, bob)
    original = send(alice, conversation, client_message_id="c-1")
    services.conversation_block(user=bob.user, conversation_id=conversation.public_id, blocked=True)
    assert send(alice, conversation, client_message_id="c-1").pk == original.pk


def test_a_blocked_send_and_its_copy_in_the_same_batch_are_both_refused(alice, bob):
    conversation = direct(alice, bob)
    services.conversation_block(user=bob.user, conversation_id=conversation.public_id, blocked=True)
    request = services.SendRequest(alice.user, conversation.public_id, "hi", "c-1")
    results = services.message_send_many(requests=[request, request])
    assert [r.error.code for r in results] == [ErrorCode.PERMISSION_DENIED] * 2


def test_only_members_block_and_only_direct_conversations(alice, bob, carol):
    conversation = direct(alice, bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.conversation_block(user=carol.user, conversation_id=conversation.public_id, blocked=True)
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    room = group(alice, bob)
    with pytest.raises(ApplicationError) as excinfo:
        services.conversation_block(user=alice.user, conversation_id=room.public_id, blocked=True)
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    conversation.refresh_from_db()
    assert conversation.blocked_at is None


def test_the_block_is_read_with_the_membership_and_costs_no_query_of_its_own(alice, bob):
    conversation = direct(alice, bob)
    services.conversation_block(user=bob.user, conversation_id=conversation.public_id, blocked=True)
    with CaptureQueriesContext(connection) as blocked, pytest.raises(ApplicationError):
        send(alice, conversation)
    assert len(blocked.captured_queries) == 1  # the batch's memberships read, which carries the flag


def test_self_message_send_creates_the_self_conversation_when_missing(db):
    from accounts.models import User

    user = User.objects.create_user(
        "late@example.com", "correct horse 42", display_name="Late", email_verified=True
    )
    message, created = services.self_message_send(user=user, content="note")
    assert created and message.seq == 1
    assert message.conversation.kind == Conversation.Kind.SELF


# read pointers


def test_sender_read_pointer_advances_on_send(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 3)
    assert read_seq(bob, conversation) == 3
    assert read_seq(alice, conversation) == 0
    send(alice, conversation)
    assert read_seq(alice, conversation) == 4
    assert read_seq(bob, conversation) == 3


def test_mark_read_defaults_to_the_newest_message(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 4)
    result, pointer = services.conversation_mark_read(user=alice.user, conversation_id=conversation.public_id)
    assert (result.pk, pointer) == (conversation.pk, 4)
    assert read_seq(alice, conversation) == 4


def test_mark_read_moves_forward_to_the_given_seq(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 4)
    _, pointer = services.conversation_mark_read(
        user=alice.user, conversation_id=conversation.public_id, up_to_seq=2
    )
    assert pointer == 2
    assert read_seq(alice, conversation) == 2


def test_mark_read_never_moves_backwards(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 4)
    services.conversation_mark_read(user=alice.user, conversation_id=conversation.public_id, up_to_seq=3)
    for seq in (1, 0):
        _, pointer = services.conversation_mark_read(
            user=alice.user, conversation_id=conversation.public_id, up_to_seq=seq
        )
        assert pointer == 3
    assert read_seq(alice, conversation) == 3


def test_mark_read_never_moves_past_the_newest_message(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    _, pointer = services.conversation_mark_read(
        user=alice.user, conversation_id=conversation.public_id, up_to_seq=10**12
    )
    assert pointer == 2
    assert read_seq(alice, conversation) == 2


def test_mark_read_of_empty_conversation_stays_at_zero(alice, bob):
    _, pointer = services.conversation_mark_read(
        user=alice.user, conversation_id=direct(alice, bob).public_id
    )
    assert pointer == 0


@pytest.mark.parametrize("seq", [-1, "3", 1.5, True, [1], {"seq": 1}], ids=repr)
def test_mark_read_refuses_bad_seq(alice, bob, seq):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    with pytest.raises(ApplicationError) as excinfo:
        services.conversation_mark_read(
            user=alice.user, conversation_id=conversation.public_id, up_to_seq=seq
        )
    assert_error(excinfo, ErrorCode.INVALID, "seq")
    assert read_seq(alice, conversation) == 0


def test_non_member_cannot_mark_read(alice, bob, carol):
    conversation = direct(bob, carol)
    with pytest.raises(ApplicationError) as excinfo:
        services.conversation_mark_read(user=alice.user, conversation_id=conversation.public_id)
    assert_error(excinfo, ErrorCode.NOT_FOUND)


def test_member_who_left_cannot_mark_read(alice, bob):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    leave(alice, conversation)
    with pytest.raises(ApplicationError) as excinfo:
        services.conversation_mark_read(user=alice.user, conversation_id=conversation.public_id)
    assert_error(excinfo, ErrorCode.NOT_FOUND)
    assert read_seq(alice, conversation) == 0


def test_group_member_can_send_and_mark_read(alice, bob, carol):
    conversation = group(alice, bob, carol)
    send_many(alice, conversation, 2)
    _, pointer = services.conversation_mark_read(user=carol.user, conversation_id=conversation.public_id)
    assert pointer == 2


def test_a_batch_answers_retries_copies_non_members_and_leavers_each_their_own_way(alice, bob, carol):
    """The memberships read and the idempotency probe are one statement on PostgreSQL: every
    kind of send in one batch still gets its own answer."""
    with_bob, with_carol = direct(alice, bob), direct(bob, carol)
    original = send(alice, with_bob, client_message_id="c-1")
    room = group(alice, bob, carol)
    leave(carol, room)
    requests = [
        services.SendRequest(alice.user, with_bob.public_id, "retry", "c-1"),
        services.SendRequest(alice.user, with_bob.public_id, "new", "c-2"),
        services.SendRequest(alice.user, with_carol.public_id, "not a member", "c-3"),
        services.SendRequest(carol.user, room.public_id, "left", "c-4"),
        services.SendRequest(bob.user, with_bob.public_id, "same id, other sender", "c-1"),
        services.SendRequest(alice.user, with_bob.public_id, "copy", "c-2"),
        services.SendRequest(bob.user, with_carol.public_id, "no id"),
    ]
    results = services.message_send_many(requests=requests)
    assert results[0].message.pk == original.pk and not results[0].created
    assert results[1].created and results[1].message.content == "new"
    assert [results[i].error.code for i in (2, 3)] == [ErrorCode.NOT_FOUND] * 2
    assert results[4].created and results[4].message.sender_id == bob.user.pk
    assert results[5].message.pk == results[1].message.pk and not results[5].created
    assert results[6].created and results[6].message.conversation_id == with_carol.pk
    assert [r.message.seq for r in (results[0], results[1], results[4])] == [1, 2, 3]
    assert Message.objects.filter(conversation=with_bob).count() == 3


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="one statement on PostgreSQL; two elsewhere",
)
def test_a_batch_reads_memberships_and_stored_client_ids_with_one_statement(alice, bob):
    conversation = direct(alice, bob)
    send(alice, conversation, client_message_id="c-1")
    retry = services.SendRequest(alice.user, conversation.public_id, "retry", "c-1")
    with CaptureQueriesContext(connection) as captured:
        results = services.message_send_many(requests=[retry])
    assert not results[0].created
    # The read, then the original (a retry's answer); nothing written.
    assert len(captured.captured_queries) == 2


@pytest.mark.parametrize(
    "content",
    [
        "plain",
        "quotes ' and \" and \\ backslashes \\n not a newline",
        "line\nbreaks\r\nand\ttabs",
        "emoji 😀👍🏽 and accents é ü ñ and CJK 漢字",
        "%s %(name)s {} $1 ::json -- not SQL",
        "x" * 4000,
    ],
)
def test_a_batch_stores_every_character_of_its_contents_exactly(alice, bob, content):
    """The batch's rows travel to PostgreSQL as one JSON parameter: what comes back from the
    database is what was sent."""
    chat = direct(alice, bob)
    results = services.message_send_many(
        requests=[
            services.SendRequest(alice.user, chat.public_id, content, client_message_id="c-1"),
            services.SendRequest(bob.user, chat.public_id, content[::-1], client_message_id="c-1"),
        ]
    )
    assert [r.message.content for r in results] == [content, content[::-1]]
    stored = Message.objects.filter(conversation=chat).order_by("seq")
    assert [(m.content, m.client_message_id, m.seq) for m in stored] == [
        (content, "c-1", 1),
        (content[::-1], "c-1", 2),
    ]
    assert stored[0].created_at == results[0].message.created_at
