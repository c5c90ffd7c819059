"""Edits, deletes, replies and reactions: who may do what (services), what is stored and served,
the events (on commit only, to the members), the ExpressChat rendering, the REST endpoints, and
the number of queries a page of history with replies and reactions costs."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from chatproject.core.timefmt import iso_ms
from gateway.protocols import expresschat
from groups import selectors as group_selectors
from groups import services as group_services
from messaging import events, selectors, services
from messaging.models import Conversation, Membership, Message, MessageEdit, Reaction
from messaging.services import SendRequest

from .conftest import direct, group, leave, self_chat, send

pytestmark = pytest.mark.django_db


def refused(code: ErrorCode, call) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call()
    assert caught.value.code == code
    return caught.value


def set_role(chat_user, conversation: Conversation, role: str) -> None:
    Membership.objects.filter(conversation=conversation, user=chat_user.user).update(role=role)


def edit(chat_user, message: Message, content: object = "changed", **kwargs) -> Message:
    return services.message_edit(user=chat_user.user, message_id=message.public_id, content=content, **kwargs)


def delete(chat_user, message: Message, **kwargs) -> Message:
    return services.message_delete(user=chat_user.user, message_id=message.public_id, **kwargs)


def react(chat_user, message: Message, emoji: object = "👍", **kwargs) -> tuple[Message, int, bool]:
    return services.reaction_add(user=chat_user.user, message_id=message.public_id, emoji=emoji, **kwargs)


def unreact(chat_user, message: Message, emoji: object = "👍", **kwargs) -> tuple[Message, int, bool]:
    return services.reaction_remove(user=chat_user.user, message_id=message.public_id, emoji=emoji, **kwargs)


def fresh(message: Message) -> Message:
    return Message.objects.get(pk=message.pk)


# --- edits ----------------------------------------------------------------------------------


def test_sender_edits_and_every_earlier_text_is_kept(alice, bob):
    chat = direct(alice, bob)
    message = send(alice, chat, "first")
    edit(alice, message, "second")
    edited = edit(alice, message, "third")
    stored = fresh(message)
    assert (stored.content, stored.seq, stored.edited_at) == ("third", 1, edited.edited_at)
    assert stored.edited_at is not None
    rows = list(MessageEdit.objects.filter(message=message).order_by("edited_at", "pk"))
    assert [(r.content, r.editor_id) for r in rows] == [("first", alice.user.pk), ("second", alice.user.pk)]
    # Any member reads the history, newest first.
    _message, history = selectors.message_edits(user=bob.user, message_id=message.public_id)
    assert [e.content for e in history] == ["second", "first"]


def test_editing_to_the_same_text_changes_nothing(alice, bob):
    message = send(alice, direct(alice, bob), "same")
    result = edit(alice, message, "same")
    assert result.edited_at is None
    assert fresh(message).edited_at is None
    assert not MessageEdit.objects.exists()


@pytest.mark.parametrize("kind", ["direct", "group admin"])
def test_only_the_sender_edits(kind, alice, bob):
    conversation = direct(alice, bob) if kind == "direct" else group(alice, bob)
    if kind == "group admin":
        set_role(bob, conversation, Membership.Role.OWNER)  # admins delete, never edit
    message = send(alice, conversation, "mine")
    refused(ErrorCode.PERMISSION_DENIED, lambda: edit(bob, message, "theirs"))
    assert fresh(message).content == "mine"
    assert not MessageEdit.objects.exists()


@pytest.mark.parametrize("content", ["", "   \n", "x" * 4001, 42, None, "nul\x00", "\ud800"])
def test_edited_content_follows_the_rules_of_a_send(content, alice, bob):
    message = send(alice, direct(alice, bob), "fine")
    error = refused(ErrorCode.INVALID, lambda: edit(alice, message, content))
    assert error.extra["field"] == "content"
    assert fresh(message).content == "fine"


def test_deleted_or_hidden_messages_cannot_be_edited(alice, bob):
    chat = direct(alice, bob)
    deleted, hidden = send(alice, chat, "gone"), send(alice, chat, "hidden")
    delete(alice, deleted)
    Message.objects.filter(pk=hidden.pk).update(hidden_at=timezone.now())
    refused(ErrorCode.CONFLICT, lambda: edit(alice, deleted))
    refused(ErrorCode.CONFLICT, lambda: edit(alice, hidden))
    assert fresh(hidden).content == "hidden"
    assert not MessageEdit.objects.exists()


def test_system_messages_cannot_be_edited_or_deleted_even_by_their_actor(alice, bob):
    team = group_services.group_create(user=alice.user, name="Team", member_ids=[bob.id])
    system = Message.objects.get(conversation=team, seq=1)
    assert (system.kind, system.sender_id) == (Message.Kind.SYSTEM, alice.user.pk)
    refused(ErrorCode.PERMISSION_DENIED, lambda: edit(alice, system))
    refused(ErrorCode.PERMISSION_DENIED, lambda: delete(alice, system))
    assert fresh(system).deleted_at is None


def test_a_member_who_left_can_no_longer_edit_or_delete(alice, bob):
    conversation = group(alice, bob)
    message = send(alice, conversation, "before")
    leave(alice, conversation)
    refused(ErrorCode.NOT_FOUND, lambda: edit(alice, message))
    refused(ErrorCode.NOT_FOUND, lambda: delete(alice, message))


def _operations():
    def edit_op(who, message_id, conversation_id=None):
        services.message_edit(
            user=who.user, message_id=message_id, content="x", conversation_id=conversation_id
        )

    def delete_op(who, message_id, conversation_id=None):
        services.message_delete(user=who.user, message_id=message_id, conversation_id=conversation_id)

    def react_op(who, message_id, conversation_id=None):
        services.reaction_add(
            user=who.user, message_id=message_id, emoji="👍", conversation_id=conversation_id
        )

    def unreact_op(who, message_id, conversation_id=None):
        services.reaction_remove(
            user=who.user, message_id=message_id, emoji="👍", conversation_id=conversation_id
        )

    def edits_op(who, message_id, conversation_id=None):
        selectors.message_edits(user=who.user, message_id=message_id, conversation_id=conversation_id)

    return {"edit": edit_op, "delete": delete_op, "react": react_op, "unreact": unreact_op, "edits": edits_op}


OPERATIONS = _operations()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_outsiders_unknown_ids_and_wrong_conversations_get_the_same_not_found(operation, alice, bob, carol):
    run = OPERATIONS[operation]
    chat = direct(alice, bob)
    message = send(alice, chat, "hi")
    elsewhere = direct(alice, carol)
    errors = [
        refused(ErrorCode.NOT_FOUND, lambda: run(carol, message.public_id)),  # not a member
        refused(ErrorCode.NOT_FOUND, lambda: run(alice, new_public_id())),  # unknown
        refused(ErrorCode.NOT_FOUND, lambda: run(alice, "not-an-id")),  # malformed
        refused(ErrorCode.NOT_FOUND, lambda: run(alice, 42)),  # not even a string
        # Named under another conversation of the caller.
        refused(ErrorCode.NOT_FOUND, lambda: run(alice, message.public_id, elsewhere.public_id)),
    ]
    assert len({(e.code, e.message, repr(e.extra)) for e in errors}) == 1
    stored = fresh(message)
    assert (stored.content, stored.deleted_at) == ("hi", None)
    assert not Reaction.objects.exists()


# --- deletes --------------------------------------------------------------------------------


def test_sender_deletes_and_a_tombstone_stays(alice, bob):
    chat = direct(alice, bob)
    message = send(alice, chat, "oops")
    send(bob, chat, "later")
    edit(alice, message, "oops, again")
    react(bob, message)
    delete(alice, message)
    stored = fresh(message)
    assert (stored.content, stored.seq, stored.public_id) == ("", 1, message.public_id)
    assert stored.deleted_at is not None
    # Nothing of the text survives: not the earlier versions, not the reactions.
    assert not MessageEdit.objects.filter(message=message).exists()
    assert not Reaction.objects.filter(message=message).exists()
    _conversation, history = selectors.message_history(user=bob.user, conversation_id=chat.public_id)
    assert [(m.seq, m.served_content, m.deleted_at is not None) for m in history] == [
        (2, "later", False),
        (1, "", True),
    ]
    assert selectors.message_edits(user=bob.user, message_id=message.public_id)[1] == []


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Membership.Role.OWNER, True), (Membership.Role.ADMIN, True), (Membership.Role.MEMBER, False)],
)
def test_in_groups_owners_and_admins_delete_anyones_message(role, allowed, alice, bob, carol):
    conversation = group(alice, bob, carol)
    set_role(bob, conversation, role)
    message = send(carol, conversation, "spam")
    if allowed:
        delete(bob, message)
        assert fresh(message).deleted_at is not None
    else:
        refused(ErrorCode.PERMISSION_DENIED, lambda: delete(bob, message))
        assert fresh(message).content == "spam"


def test_a_plain_group_member_deletes_their_own_message(alice, bob):
    conversation = group(alice, bob)
    message = send(bob, conversation, "mine")
    delete(bob, message)
    assert fresh(message).deleted_at is not None


def test_in_direct_chats_only_the_sender_deletes(alice, bob):
    chat = direct(alice, bob)
    message = send(alice, chat, "mine")
    # A role a direct membership never has in practice must still not give deletion rights.
    set_role(bob, chat, Membership.Role.ADMIN)
    refused(ErrorCode.PERMISSION_DENIED, lambda: delete(bob, message))
    assert fresh(message).deleted_at is None


def test_deleting_twice_or_deleting_a_hidden_message_is_a_conflict(alice, bob):
    chat = direct(alice, bob)
    message, hidden = send(alice, chat, "a"), send(alice, chat, "b")
    delete(alice, message)
    refused(ErrorCode.CONFLICT, lambda: delete(alice, message))
    Message.objects.filter(pk=hidden.pk).update(hidden_at=timezone.now())
    refused(ErrorCode.CONFLICT, lambda: delete(alice, hidden))
    assert fresh(hidden).content == "b"  # the moderator's evidence stays


def test_a_moderator_delete_also_erases_edits_and_reactions(alice, bob):
    from tests.moderation.conftest import MODERATOR_PERMISSIONS, staff_make

    moderator = staff_make("mod@example.com", *MODERATOR_PERMISSIONS)
    message = send(alice, direct(alice, bob), "rude")
    edit(alice, message, "ruder")
    react(bob, message, "😡")
    services.message_moderate(moderator=moderator, message_id=message.public_id, action="delete", reason="x")
    assert not MessageEdit.objects.filter(message=message).exists()
    assert not Reaction.objects.filter(message=message).exists()


# --- replies --------------------------------------------------------------------------------


def test_a_reply_quotes_a_message_of_the_same_conversation(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    chat = direct(alice, bob)
    original = send(alice, chat, "x" * 150)
    with django_capture_on_commit_callbacks(execute=True):
        reply = send(bob, chat, "answer", reply_to=original.public_id)
    assert fresh(reply).reply_to_id == original.pk
    [(_groups, event)] = bus_sent
    assert event["message"]["reply_to"] == {
        "id": original.public_id,
        "seq": 1,
        "kind": "text",
        "sender_id": alice.id,
        "sender_name": "Alice",
        "excerpt": "x" * events.REPLY_EXCERPT_LENGTH,
        "deleted": False,
    }


@pytest.mark.parametrize("target", ["other conversation", "unknown", "malformed", "number", "list"])
def test_a_reply_to_anything_but_a_message_of_the_conversation_is_not_found(target, alice, bob, carol):
    chat = direct(alice, bob)
    foreign = send(alice, direct(alice, carol), "elsewhere")
    reply_to = {
        "other conversation": foreign.public_id,
        "unknown": new_public_id(),
        "malformed": "nope",
        "number": 7,
        "list": [foreign.public_id],
    }[target]
    error = refused(ErrorCode.NOT_FOUND, lambda: send(bob, chat, "answer", reply_to=reply_to))
    assert error.extra == {"field": "reply_to"}
    assert not Message.objects.filter(conversation=chat).exists()


def test_a_reply_to_a_deleted_message_quotes_the_tombstone(alice, bob):
    chat = direct(alice, bob)
    original = send(alice, chat, "regret")
    delete(alice, original)
    reply = send(bob, chat, "what was it?", reply_to=original.public_id)
    quoted = events.reply_payload(fresh(reply).reply_to)
    assert (quoted["id"], quoted["excerpt"], quoted["deleted"]) == (original.public_id, "", True)


def test_a_batch_resolves_its_replies_with_one_query_and_refuses_each_bad_one_alone(alice, bob, carol):
    chat, other = direct(alice, bob), direct(alice, carol)
    target, foreign = send(alice, chat, "target"), send(alice, other, "foreign")

    def batch(with_replies: bool) -> list:
        requests = [
            SendRequest(bob.user, chat.public_id, "one", reply_to=target.public_id if with_replies else None),
            SendRequest(
                alice.user, other.public_id, "two", reply_to=foreign.public_id if with_replies else None
            ),
            SendRequest(alice.user, chat.public_id, "three"),
        ]
        with CaptureQueriesContext(connection) as captured:
            results = services.message_send_many(requests=requests)
        return results, len(captured)

    plain, plain_queries = batch(False)
    replies, reply_queries = batch(True)
    assert reply_queries == plain_queries + 1
    assert all(r.error is None for r in replies)
    assert [r.message.reply_to_id for r in replies] == [target.pk, foreign.pk, None]
    bad = services.message_send_many(
        requests=[
            SendRequest(bob.user, chat.public_id, "bad", reply_to=foreign.public_id),
            SendRequest(bob.user, chat.public_id, "good", reply_to=target.public_id),
        ]
    )
    assert bad[0].error.code == ErrorCode.NOT_FOUND and bad[0].message is None
    assert bad[1].error is None and bad[1].message.content == "good"


def test_a_retried_reply_returns_the_original(alice, bob):
    chat = direct(alice, bob)
    target = send(alice, chat, "target")
    first, created = services.message_send(
        user=bob.user,
        conversation_id=chat.public_id,
        content="r",
        client_message_id="c1",
        reply_to=target.public_id,
    )
    again, created_again = services.message_send(
        user=bob.user,
        conversation_id=chat.public_id,
        content="r",
        client_message_id="c1",
        reply_to=target.public_id,
    )
    assert (created, created_again, again.pk) == (True, False, first.pk)


# --- reactions ------------------------------------------------------------------------------


def test_reactions_are_counted_per_emoji_and_adding_or_removing_twice_changes_nothing(alice, bob, carol):
    conversation = group(alice, bob, carol)
    message = send(alice, conversation, "news")
    assert react(bob, message, "👍")[1:] == (1, True)
    assert react(bob, message, "👍")[1:] == (1, False)
    assert react(carol, message, "👍")[1:] == (2, True)
    assert react(carol, message, "🎉")[1:] == (1, True)
    assert Reaction.objects.filter(message=message).count() == 3
    assert unreact(bob, message, "👍")[1:] == (1, True)
    assert unreact(bob, message, "👍")[1:] == (1, False)
    assert unreact(bob, message, "🎉")[1:] == (1, False)  # carol's stays
    assert sorted(Reaction.objects.values_list("user__display_name", "emoji")) == [
        ("Carol", "🎉"),
        ("Carol", "👍"),
    ]


def test_each_user_has_a_bounded_number_of_distinct_reactions_per_message(alice, bob, settings):
    settings.CHAT = {**settings.CHAT, "MAX_REACTIONS_PER_USER": 3}
    message = send(alice, direct(alice, bob), "hi")
    for emoji in ("a", "b", "c"):
        react(bob, message, emoji)
    error = refused(ErrorCode.INVALID, lambda: react(bob, message, "d"))
    assert error.extra == {"field": "emoji", "max_reactions": 3}
    assert react(bob, message, "a")[2] is False  # one already there is still fine
    assert react(alice, message, "d")[2] is True  # the limit is per user
    unreact(bob, message, "a")
    assert react(bob, message, "d")[2] is True


@pytest.mark.parametrize("emoji", ["", " ", "thumbs up", "x" * 33, None, 5, ["👍"], "\x00", "\ud800"])
def test_bad_emoji_are_invalid(emoji, alice, bob):
    message = send(alice, direct(alice, bob), "hi")
    assert refused(ErrorCode.INVALID, lambda: react(bob, message, emoji)).extra == {"field": "emoji"}
    assert refused(ErrorCode.INVALID, lambda: unreact(bob, message, emoji)).extra == {"field": "emoji"}
    assert not Reaction.objects.exists()


def test_longest_emoji_sequence_is_accepted(alice, bob):
    family = "👩\u200d👩\u200d👧\u200d👦"  # one emoji, seven code points
    message = send(alice, direct(alice, bob), "hi")
    long = "x" * 32
    assert react(bob, message, family)[2] and react(bob, message, long)[2]


def test_deleted_or_hidden_messages_take_no_reactions(alice, bob):
    chat = direct(alice, bob)
    deleted, hidden = send(alice, chat, "a"), send(alice, chat, "b")
    delete(alice, deleted)
    Message.objects.filter(pk=hidden.pk).update(hidden_at=timezone.now())
    refused(ErrorCode.CONFLICT, lambda: react(bob, deleted))
    refused(ErrorCode.CONFLICT, lambda: react(bob, hidden))
    assert unreact(bob, deleted)[2] is False  # nothing to remove is not an error


def test_the_database_refuses_a_second_identical_reaction(alice, bob):
    from django.db import IntegrityError

    message = send(alice, direct(alice, bob), "hi")
    Reaction.objects.create(message=message, user=bob.user, emoji="👍")
    with pytest.raises(IntegrityError), transaction.atomic():
        Reaction.objects.create(message=message, user=bob.user, emoji="👍")


# --- events ---------------------------------------------------------------------------------


def _change(operation: str, alice, bob, message: Message) -> None:
    {
        "edit": lambda: edit(alice, message, "new"),
        "delete": lambda: delete(alice, message),
        "react": lambda: react(bob, message),
        "unreact": lambda: unreact(alice, message, "🙂"),
    }[operation]()


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ("edit", "message.edited"),
        ("delete", "message.deleted"),
        ("react", "reaction.added"),
        ("unreact", "reaction.removed"),
    ],
)
def test_events_leave_only_on_commit(
    operation, kind, alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    message = send(alice, direct(alice, bob), "hi")
    react(alice, message, "🙂")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _change(operation, alice, bob, message)
    assert bus_sent == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert [event["type"] for _groups, event in bus_sent] == [kind]


@pytest.mark.parametrize("operation", ["edit", "delete", "react", "unreact"])
def test_a_rolled_back_change_publishes_nothing(
    operation, alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    message = send(alice, direct(alice, bob), "hi")
    react(alice, message, "🙂")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            _change(operation, alice, bob, message)
            raise RuntimeError
    assert callbacks == [] and bus_sent == []


def test_direct_chat_edit_goes_to_both_members(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    chat = direct(alice, bob)
    message = send(alice, chat, "hi")
    with django_capture_on_commit_callbacks(execute=True):
        edited = edit(alice, message, "hello")
    [(groups, event)] = bus_sent
    assert set(groups) == {f"u.{alice.id}", f"u.{bob.id}"}
    assert event == {
        "type": "message.edited",
        "actor": alice.id,
        "conversation": {"id": chat.public_id, "kind": "direct"},
        "message": {
            "id": message.public_id,
            "seq": 1,
            "rev": 2,
            "kind": "text",
            "content": "hello",
            "edited_at": iso_ms(edited.edited_at),
            "attachment": None,
        },
    }


def test_group_reactions_go_to_the_conversation_group(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = group(alice, bob)
    message = send(alice, conversation, "hi")
    with django_capture_on_commit_callbacks(execute=True):
        react(bob, message, "🎉")
        react(alice, message, "🎉")
        unreact(bob, message, "🎉")
    assert [groups for groups, _event in bus_sent] == [[f"c.{conversation.public_id}"]] * 3
    assert bus_sent[1][1] == {
        "type": "reaction.added",
        "actor": alice.id,
        "conversation": {"id": conversation.public_id, "kind": "group"},
        "message": {"id": message.public_id, "seq": 1, "rev": 3},
        "emoji": "🎉",
        "count": 2,
    }
    assert (bus_sent[2][1]["type"], bus_sent[2][1]["count"]) == ("reaction.removed", 1)


def test_a_delete_publishes_what_moderation_publishes(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = group(alice, bob)
    set_role(alice, conversation, Membership.Role.ADMIN)
    message = send(bob, conversation, "hi")
    with django_capture_on_commit_callbacks(execute=True):
        delete(alice, message)
    assert bus_sent == [
        (
            [f"c.{conversation.public_id}"],
            events.message_deleted(conversation=conversation, message=fresh(message)),
        )
    ]


def test_self_chat_changes_go_to_the_owner_only(alice, bus_sent, django_capture_on_commit_callbacks):
    note = send(alice, self_chat(alice), "note")
    with django_capture_on_commit_callbacks(execute=True):
        edit(alice, note, "note!")
        react(alice, note, "⭐")
        delete(alice, note)
    assert [groups for groups, _event in bus_sent] == [[f"u.{alice.id}"]] * 3


def test_refusals_and_no_op_repeats_publish_nothing(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    message = send(alice, direct(alice, bob), "hi")
    react(bob, message)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refused(ErrorCode.PERMISSION_DENIED, lambda: edit(bob, message))
        refused(ErrorCode.PERMISSION_DENIED, lambda: delete(bob, message))
        edit(alice, message, "hi")  # same text
        react(bob, message)  # already there
        unreact(alice, message)  # not there
    assert callbacks == [] and bus_sent == []


# --- ExpressChat rendering ------------------------------------------------------------------

CHAT_ID, MESSAGE_ID, USER_ID = "c" * 24, "m" * 24, "u" * 24


def test_expresschat_renders_an_edit_to_the_others():
    event = {
        "type": "message.edited",
        "actor": USER_ID,
        "conversation": {"id": CHAT_ID, "kind": "direct"},
        "message": {
            "id": MESSAGE_ID,
            "seq": 4,
            "rev": 7,
            "content": "new",
            "edited_at": "2026-01-01T00:00:00.000Z",
        },
    }
    emit, echo = expresschat.render(event)
    assert (emit.name, emit.to, emit.skip) == ("message-edited", expresschat.ALL, (expresschat.ACTOR,))
    # And the editor's other connections, never the one that asked (the event's origin).
    assert (echo.name, echo.to, echo.skip_origin, echo.payload) == (
        "message-edited",
        expresschat.ACTOR,
        True,
        emit.payload,
    )
    assert emit.payload == {
        "ChatId": CHAT_ID,
        "Id": MESSAGE_ID,
        "Seq": 4,
        "Rev": 7,
        "Content": "new",
        "EditedAt": "2026-01-01T00:00:00.000Z",
    }


@pytest.mark.parametrize(("kind", "added"), [("reaction.added", True), ("reaction.removed", False)])
def test_expresschat_renders_reactions_to_every_member(kind, added):
    event = {
        "type": kind,
        "actor": USER_ID,
        "conversation": {"id": CHAT_ID, "kind": "group"},
        "message": {"id": MESSAGE_ID, "seq": 2, "rev": 5},
        "emoji": "🎉",
        "count": 3,
    }
    [emit] = expresschat.render(event)
    assert (emit.name, emit.to, emit.skip) == ("reaction", expresschat.ALL, ())
    assert emit.payload == {
        "ChatId": CHAT_ID,
        "Id": MESSAGE_ID,
        "Seq": 2,
        "Rev": 5,
        "Emoji": "🎉",
        "UserId": USER_ID,
        "Count": 3,
        "Added": added,
    }


@pytest.mark.parametrize(
    ("kind", "name"), [("direct", "receive-personal-message"), ("group", "receive-group-message")]
)
def test_delivered_replies_carry_the_quote_and_plain_messages_do_not(kind, name, alice, bob):
    conversation = direct(alice, bob) if kind == "direct" else group(alice, bob)
    original = send(alice, conversation, "question")
    reply = send(bob, conversation, "answer", reply_to=original.public_id)
    for message, quoted in ((reply, True), (original, False)):
        event = events.message_created(conversation=conversation, message=message, sender=message.sender)
        emit, echo = expresschat.render(event)
        assert emit.name == name
        assert (echo.name, echo.to, echo.skip_origin) == ("message-sent", expresschat.ACTOR, True)
        assert echo.payload == emit.payload
        if quoted:
            assert emit.payload["ReplyTo"] == {
                "Id": original.public_id,
                "Seq": 1,
                "Sender": "Alice",
                "SenderId": alice.id,
                "Excerpt": "question",
                "Deleted": False,
                "Kind": "text",
            }
        else:
            assert "ReplyTo" not in emit.payload


def _decorated(alice, bob, conversation: Conversation) -> tuple[Message, Message]:
    original = send(alice, conversation, "question")
    reply = send(bob, conversation, "answer", reply_to=original.public_id)
    edit(bob, reply, "answer, edited")
    react(alice, reply, "👍")
    react(bob, reply, "👍")
    react(bob, reply, "🎉")
    return original, reply


def test_history_payloads_carry_edits_replies_and_reactions(alice, bob):
    chat = direct(alice, bob)
    original, reply = _decorated(alice, bob, chat)
    page = selectors.conversation_page(user=alice.user, conversation_id=chat.public_id, kind="direct")
    newest, oldest = (
        expresschat.personal_message(m, page.read_pointers, page.reactions.get(m.pk, ()))
        for m in page.messages
    )
    assert newest["_id"] == reply.public_id
    assert newest["EditedAt"] == iso_ms(fresh(reply).edited_at)
    assert newest["ReplyTo"]["Id"] == original.public_id
    assert newest["Reactions"] == {"👍": 2, "🎉": 1}
    assert newest["MyReactions"] == ["👍"]
    assert (oldest["EditedAt"], oldest["ReplyTo"], oldest["Reactions"], oldest["MyReactions"]) == (
        None,
        None,
        {},
        [],
    )


def test_group_and_self_history_payloads_carry_them_too(alice, bob):
    team = group_services.group_create(user=alice.user, name="Team", member_ids=[bob.id])
    _original, reply = _decorated(alice, bob, team)
    page = group_selectors.group_page(user=bob.user, group_id=team.public_id)
    wire = expresschat.group_chat_payload(page, bob.id)["Messages"][0]
    assert (wire["Id"], wire["Reactions"], sorted(wire["MyReactions"])) == (
        reply.public_id,
        {"👍": 2, "🎉": 1},
        ["🎉", "👍"],
    )
    note = send(alice, self_chat(alice), "note")
    react(alice, note, "⭐")
    page = selectors.conversation_page(
        user=alice.user, conversation_id=self_chat(alice).public_id, kind="self"
    )
    [self_wire] = [expresschat.self_message(m, page.reactions.get(m.pk, ())) for m in page.messages]
    assert (self_wire["Reactions"], self_wire["ReplyTo"], self_wire["EditedAt"]) == ({"⭐": 1}, None, None)


def test_history_page_queries_do_not_grow_with_replies_and_reactions(
    alice, bob, django_assert_max_num_queries
):
    chat = direct(alice, bob)

    def add(count: int) -> None:
        previous = None
        for i in range(count):
            message = send(alice, chat, f"m{i}", reply_to=previous)
            react(bob, message, "👍")
            react(alice, message, "🎉")
            previous = message.public_id

    counts = []
    for count in (3, 20):
        add(count)
        with CaptureQueriesContext(connection) as captured:
            page = selectors.conversation_page(user=alice.user, conversation_id=chat.public_id, kind="direct")
            [
                expresschat.personal_message(m, page.read_pointers, page.reactions.get(m.pk, ()))
                for m in page.messages
            ]
        counts.append(len(captured))
    assert counts[0] == counts[1]
    # membership, messages, their senders, the quoted ones (with their senders), read pointers,
    # partner, reactions
    with django_assert_max_num_queries(7):
        page = selectors.conversation_page(user=alice.user, conversation_id=chat.public_id, kind="direct")
        [
            expresschat.personal_message(m, page.read_pointers, page.reactions.get(m.pk, ()))
            for m in page.messages
        ]


def test_reactions_shown_per_message_are_bounded_most_used_first(alice, make_user, settings):
    users = [alice] + [make_user() for _ in range(3)]
    conversation = group(*users)
    message = send(alice, conversation, "hi")
    Reaction.objects.bulk_create(
        [
            Reaction(message=message, user=users[0].user, emoji=f"e{i:03d}")
            for i in range(selectors.REACTIONS_SHOWN + 5)
        ]
        + [Reaction(message=message, user=u.user, emoji="top") for u in users[1:]]
    )
    shown = selectors.message_reactions(messages=[message], viewer=alice.user)[message.pk]
    assert len(shown) == selectors.REACTIONS_SHOWN
    assert (shown[0].emoji, shown[0].count, shown[0].mine) == ("top", 3, False)


# --- REST -----------------------------------------------------------------------------------


def message_url(conversation: Conversation, message: Message | str, tail: str = "") -> str:
    message_id = message if isinstance(message, str) else message.public_id
    return f"/api/conversations/{conversation.public_id}/messages/{message_id}/{tail}"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"} and body["code"] == code
    return body


def test_api_edit_returns_the_message_and_reaches_the_members(alice, bob, client_for, bus_sent):
    chat = direct(alice, bob)
    message = send(alice, chat, "helo")
    response = client_for(alice).patch(message_url(chat, message), {"content": "hello"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["content"], body["edited_at"]) == (
        message.public_id,
        "hello",
        iso_ms(fresh(message).edited_at),
    )
    assert [event["type"] for _groups, event in bus_sent] == ["message.edited"]
    edits = client_for(bob).get(message_url(chat, message, "edits/"))
    assert edits.status_code == 200
    assert edits.json()["message_id"] == message.public_id
    [entry] = edits.json()["results"]
    assert (entry["content"], entry["editor"]) == ("helo", {"id": alice.id, "display_name": "Alice"})
    assert entry["edited_at"] == body["edited_at"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"content": 5}, 400, "invalid"),
        ({"content": "x", "extra": 1}, 400, "invalid"),
        ({"content": "   "}, 400, "invalid"),
    ],
)
def test_api_edit_bad_bodies_are_refused(body, status, code, alice, bob, client_for):
    chat = direct(alice, bob)
    message = send(alice, chat, "keep")
    assert_error(client_for(alice).patch(message_url(chat, message), body, format="json"), status, code)
    assert fresh(message).content == "keep"


def test_api_edit_and_delete_refusals(alice, bob, carol, client_for):
    chat = direct(alice, bob)
    message = send(alice, chat, "keep")
    assert_error(
        client_for(bob).patch(message_url(chat, message), {"content": "x"}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(client_for(bob).delete(message_url(chat, message)), 403, "permission_denied")
    assert_error(
        client_for(carol).patch(message_url(chat, message), {"content": "x"}, format="json"), 404, "not_found"
    )
    assert_error(client_for(carol).delete(message_url(chat, message)), 404, "not_found")
    assert_error(client_for(carol).get(message_url(chat, message, "edits/")), 404, "not_found")
    assert_error(client_for(alice).delete(message_url(chat, "unknown")), 404, "not_found")
    elsewhere = direct(alice, carol)
    assert_error(client_for(alice).delete(message_url(elsewhere, message)), 404, "not_found")
    assert_error(client_for().delete(message_url(chat, message)), 401, "not_authenticated")
    assert fresh(message).deleted_at is None


def test_api_delete_leaves_a_tombstone_in_history(alice, bob, client_for):
    conversation = group(alice, bob)
    set_role(alice, conversation, Membership.Role.ADMIN)
    message = send(bob, conversation, "spam")
    response = client_for(alice).delete(message_url(conversation, message))
    assert response.status_code == 204
    assert_error(client_for(alice).delete(message_url(conversation, message)), 409, "conflict")
    [served] = client_for(bob).get(f"/api/conversations/{conversation.public_id}/messages/").json()["results"]
    assert (served["id"], served["content"], served["deleted"], served["reactions"]) == (
        message.public_id,
        "",
        True,
        [],
    )


def test_api_reactions_add_remove_and_show_in_history(alice, bob, client_for, bus_sent):
    chat = direct(alice, bob)
    message = send(alice, chat, "hi")
    client = client_for(bob)
    url = message_url(chat, message, "reactions/")
    first = client.post(url, {"emoji": "👍"}, format="json")
    again = client.post(url, {"emoji": "👍"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == {"message_id": message.public_id, "emoji": "👍", "count": 1, "changed": True}
    assert again.json()["changed"] is False
    client_for(alice).post(url, {"emoji": "👍"}, format="json")
    [served] = client.get(f"/api/conversations/{chat.public_id}/messages/").json()["results"]
    assert served["reactions"] == [{"emoji": "👍", "count": 2, "mine": True}]
    removed = client.delete(url, {"emoji": "👍"}, format="json")
    assert removed.status_code == 200 and removed.json()["count"] == 1 and removed.json()["changed"] is True
    assert client.delete(url, {"emoji": "👍"}, format="json").json()["changed"] is False
    assert [event["type"] for _groups, event in bus_sent] == [
        "reaction.added",
        "reaction.added",
        "reaction.removed",
    ]


@pytest.mark.parametrize(
    "body", [{}, {"emoji": ""}, {"emoji": "x" * 33}, {"emoji": 1}, {"emoji": "a b"}, {"emoji": "👍", "x": 1}]
)
def test_api_bad_reactions_are_400(body, alice, bob, client_for):
    chat = direct(alice, bob)
    message = send(alice, chat, "hi")
    assert_error(
        client_for(bob).post(message_url(chat, message, "reactions/"), body, format="json"), 400, "invalid"
    )
    assert not Reaction.objects.exists()


def test_api_reactions_of_outsiders_are_404(alice, bob, carol, client_for):
    chat = direct(alice, bob)
    message = send(alice, chat, "hi")
    url = message_url(chat, message, "reactions/")
    assert_error(client_for(carol).post(url, {"emoji": "👍"}, format="json"), 404, "not_found")
    assert_error(client_for(carol).delete(url, {"emoji": "👍"}, format="json"), 404, "not_found")


def test_api_send_a_reply(alice, bob, carol, client_for):
    chat = direct(alice, bob)
    original = send(alice, chat, "question")
    url = f"/api/conversations/{chat.public_id}/messages/"
    response = client_for(bob).post(url, {"content": "answer", "reply_to": original.public_id}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["reply_to"] == {
        "id": original.public_id,
        "seq": 1,
        "kind": "text",
        "sender_id": alice.id,
        "sender_name": "Alice",
        "excerpt": "question",
        "deleted": False,
    }
    foreign = send(alice, direct(alice, carol), "elsewhere")
    refusal = client_for(bob).post(url, {"content": "x", "reply_to": foreign.public_id}, format="json")
    assert assert_error(refusal, 404, "not_found")["extra"] == {"field": "reply_to"}
    assert_error(client_for(bob).post(url, {"content": "x", "reply_to": 5}, format="json"), 400, "invalid")
    [newest, oldest] = client_for(alice).get(url).json()["results"]
    assert (newest["reply_to"]["id"], oldest["reply_to"]) == (original.public_id, None)


def test_api_history_page_queries_stay_constant_with_replies_and_reactions(
    alice, bob, client_for, django_assert_max_num_queries
):
    chat = direct(alice, bob)
    client = client_for(alice)
    url = f"/api/conversations/{chat.public_id}/messages/"
    counts = []
    previous = None
    for count in (3, 20):
        for i in range(count):
            message = send(bob, chat, f"m{i}", reply_to=previous)
            react(alice, message, "👍")
            react(bob, message, "🎉")
            previous = message.public_id
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]
    # user, session, membership, messages, their senders, the quoted ones (with their senders),
    # reactions
    with django_assert_max_num_queries(7):
        body = client.get(url).json()
    assert all(len(m["reactions"]) == 2 for m in body["results"])
