"""Moderating messages: who may, what hide and delete do to storage and to what members are
served, the record kept, and the events (on commit only, to the conversation's members)."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ModerationAction
from chatproject.core.errors import ApplicationError, ErrorCode
from gateway.protocols import expresschat
from messaging import selectors, services
from messaging.models import Message
from messaging.serializers import MessageOutput

from .conftest import send, staff_make

pytestmark = pytest.mark.django_db


def moderate(moderator, message: Message, action: str = "hide", reason: object = "Spam") -> Message:
    return services.message_moderate(
        moderator=moderator, message_id=message.public_id, action=action, reason=reason
    )


def refused(code: ErrorCode, call) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call()
    assert caught.value.code == code
    return caught.value


# --- who may --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who",
    [
        "member",
        "staff without the permission",
        "inactive staff with the permission",
        "banned staff with the permission",
    ],
)
def test_only_active_staff_with_the_permission_moderate(who, alice, bob, chat):
    message = send(alice, chat, "rude")
    moderator = {
        "member": lambda: bob.user,
        "staff without the permission": lambda: staff_make("s@example.com", "messaging.view_message"),
        "inactive staff with the permission": lambda: staff_make(
            "s@example.com", "messaging.moderate_message", is_active=False
        ),
        "banned staff with the permission": lambda: staff_make(
            "s@example.com", "messaging.moderate_message", is_banned=True
        ),
    }[who]()
    for action in ("hide", "delete"):
        refused(ErrorCode.PERMISSION_DENIED, lambda a=action: moderate(moderator, message, a))
    message.refresh_from_db()
    assert (message.content, message.hidden_at, message.deleted_at) == ("rude", None, None)
    assert not ModerationAction.objects.exists()


def test_staff_with_the_permission_and_superusers_moderate(alice, chat):
    first, second = send(alice, chat, "one"), send(alice, chat, "two")
    moderate(staff_make("s@example.com", "messaging.moderate_message"), first)
    moderate(staff_make("root@example.com", superuser=True), second)
    assert Message.objects.filter(hidden_at__isnull=False).count() == 2


@pytest.mark.parametrize("reason", ["", "   \n", None, 42, "x" * 501, "bad\x00reason"])
def test_a_reason_is_required_and_bounded(moderator, alice, chat, reason):
    message = send(alice, chat, "rude")
    error = refused(ErrorCode.INVALID, lambda: moderate(moderator, message, "delete", reason))
    assert error.extra["field"] == "reason"
    message.refresh_from_db()
    assert message.content == "rude"
    assert not ModerationAction.objects.exists()


def test_a_reason_of_the_maximum_length_is_kept_stripped(moderator, alice, chat):
    message = send(alice, chat, "rude")
    moderate(moderator, message, reason=f"  {'x' * 500}  ")
    assert ModerationAction.objects.get().reason == "x" * 500


@pytest.mark.parametrize("message_id", ["0" * 24, "not-an-id", None, 7])
def test_unknown_or_malformed_message_is_not_found(moderator, message_id):
    refused(
        ErrorCode.NOT_FOUND,
        lambda: services.message_moderate(
            moderator=moderator, message_id=message_id, action="hide", reason="Spam"
        ),
    )


def test_unknown_action_is_invalid(moderator, alice, chat):
    refused(ErrorCode.INVALID, lambda: moderate(moderator, send(alice, chat), "purge"))


# --- what hide and delete do ----------------------------------------------------------------


def test_hide_keeps_the_text_for_moderators_but_members_are_served_nothing(moderator, alice, bob, chat):
    message = send(alice, chat, "rude words")
    moderate(moderator, message, "hide")
    stored = Message.objects.get(pk=message.pk)
    assert stored.content == "rude words"  # for moderators, in the admin
    assert stored.hidden_at is not None and stored.deleted_at is None
    _conversation, history = selectors.message_history(user=bob.user, conversation_id=chat.public_id)
    served = MessageOutput(history[0], context={"conversation": chat}).data
    assert (served["id"], served["seq"], served["content"]) == (message.public_id, 1, "")
    assert (served["hidden"], served["deleted"]) == (True, False)
    page = selectors.conversation_page(user=bob.user, conversation_id=chat.public_id, kind="direct")
    wire = expresschat.personal_message(page.messages[0], page.read_pointers)
    assert (wire["Content"], wire["Hidden"], wire["Deleted"], wire["Seq"]) == ("", True, False, 1)


def test_delete_erases_the_text_and_keeps_the_seq(moderator, alice, chat):
    first, second = send(alice, chat, "rude words"), send(alice, chat, "fine")
    moderate(moderator, first, "delete")
    stored = Message.objects.get(pk=first.pk)
    assert stored.content == ""  # gone for good, not only hidden
    assert stored.deleted_at is not None and stored.hidden_at is None
    assert not Message.objects.filter(content__contains="rude").exists()
    assert list(Message.objects.filter(conversation=chat).order_by("seq").values_list("seq", flat=True)) == [
        1,
        2,
    ]
    chat.refresh_from_db()
    assert chat.last_seq == 2
    served = MessageOutput(stored, context={"conversation": chat}).data
    assert (served["content"], served["hidden"], served["deleted"]) == ("", False, True)
    assert Message.objects.get(pk=second.pk).content == "fine"


def test_group_and_self_chat_payloads_are_served_blank_too(moderator, alice, team):
    in_group = send(alice, team, "rude")
    note = services.self_message_send(user=alice.user, content="private")[0]
    moderate(moderator, in_group, "delete")
    moderate(moderator, note, "hide")
    in_group.refresh_from_db()
    note.refresh_from_db()
    group_wire = expresschat.group_message(in_group, {})
    assert (group_wire["Content"], group_wire["Deleted"], group_wire["Hidden"]) == ("", True, False)
    self_wire = expresschat.self_message(note)
    assert (self_wire["Content"], self_wire["Hidden"]) == ("", True)


def test_a_hidden_message_can_still_be_deleted(moderator, alice, chat):
    message = send(alice, chat, "rude")
    moderate(moderator, message, "hide")
    moderate(moderator, message, "delete")
    stored = Message.objects.get(pk=message.pk)
    assert (stored.content, stored.hidden_at is not None, stored.deleted_at is not None) == ("", True, True)
    assert ModerationAction.objects.count() == 2


@pytest.mark.parametrize(("first", "again"), [("hide", "hide"), ("delete", "delete"), ("delete", "hide")])
def test_moderating_twice_is_a_conflict_and_records_nothing_more(moderator, alice, chat, first, again):
    message = send(alice, chat, "rude")
    moderate(moderator, message, first)
    refused(ErrorCode.CONFLICT, lambda: moderate(moderator, message, again))
    assert ModerationAction.objects.count() == 1


# --- the record -----------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "recorded"), [("hide", "message_hide"), ("delete", "message_delete")])
def test_the_moderation_is_recorded_with_who_what_when_and_why(moderator, alice, chat, action, recorded):
    message = send(alice, chat, "rude words")
    before = timezone.now()
    moderate(moderator, message, action, reason="Insults another member")
    record = ModerationAction.objects.get()
    assert record.moderator == moderator
    assert (record.action, record.target_type, record.target_id) == (recorded, "message", message.public_id)
    assert record.reason == "Insults another member"
    assert before <= record.created_at <= timezone.now()
    assert record.extra == {
        "conversation_id": chat.public_id,
        "conversation_kind": "direct",
        "seq": 1,
        "sender_id": alice.id,
    }
    assert "rude" not in str(record.extra)


def test_a_record_without_a_reason_is_refused_by_the_database(moderator):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModerationAction.objects.create(
            moderator=moderator, action="user_ban", target_type="user", target_id="0" * 24, reason=""
        )


def test_nothing_is_recorded_or_changed_when_the_transaction_rolls_back(
    moderator, alice, chat, bus_sent, django_capture_on_commit_callbacks
):
    message = send(alice, chat, "rude")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            moderate(moderator, message, "delete")
            raise RuntimeError("later step failed")
    assert callbacks == []
    assert bus_sent == []
    assert Message.objects.get(pk=message.pk).content == "rude"
    assert not ModerationAction.objects.exists()


# --- events ---------------------------------------------------------------------------------


def test_events_leave_only_on_commit(moderator, alice, chat, bus_sent, django_capture_on_commit_callbacks):
    message = send(alice, chat, "rude")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        moderate(moderator, message, "hide")
    assert bus_sent == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert [event["type"] for _groups, event in bus_sent] == ["message.hidden"]


def test_direct_chat_events_go_to_both_members(
    moderator, alice, bob, chat, bus_sent, django_capture_on_commit_callbacks
):
    message = send(alice, chat, "rude")
    with django_capture_on_commit_callbacks(execute=True):
        moderate(moderator, message, "delete")
    assert len(bus_sent) == 1
    groups, event = bus_sent[0]
    assert set(groups) == {f"u.{alice.id}", f"u.{bob.id}"}
    assert event == {
        "type": "message.deleted",
        "actor": None,  # members never learn which staff account acted
        "conversation": {"id": chat.public_id, "kind": "direct"},
        "message": {"id": message.public_id, "seq": 1, "rev": 2},
    }


def test_group_events_go_to_the_conversation_group(
    moderator, alice, team, bus_sent, django_capture_on_commit_callbacks
):
    message = send(alice, team, "rude")
    with django_capture_on_commit_callbacks(execute=True):
        moderate(moderator, message, "hide")
    assert [(groups, event["type"]) for groups, event in bus_sent] == [
        ([f"c.{team.public_id}"], "message.hidden")
    ]


def test_self_chat_events_go_to_the_owner_only(
    moderator, alice, bus_sent, django_capture_on_commit_callbacks
):
    note = services.self_message_send(user=alice.user, content="private")[0]
    with django_capture_on_commit_callbacks(execute=True):
        moderate(moderator, note, "delete")
    assert [groups for groups, _event in bus_sent] == [[f"u.{alice.id}"]]


def test_refusals_publish_nothing(moderator, alice, bob, chat, bus_sent, django_capture_on_commit_callbacks):
    message = send(alice, chat, "rude")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refused(ErrorCode.PERMISSION_DENIED, lambda: moderate(bob.user, message))
        refused(ErrorCode.INVALID, lambda: moderate(moderator, message, reason=""))
    assert callbacks == [] and bus_sent == []


@pytest.mark.parametrize(("kind", "hidden"), [("message.hidden", True), ("message.deleted", False)])
def test_expresschat_renders_message_deleted_to_every_member(kind, hidden):
    event = {
        "type": kind,
        "actor": None,
        "conversation": {"id": "c" * 24, "kind": "group"},
        "message": {"id": "m" * 24, "seq": 9, "rev": 12},
    }
    [emit] = expresschat.render(event)
    assert (emit.name, emit.to, emit.skip) == ("message-deleted", expresschat.ALL, ())
    assert emit.payload == {"ChatId": "c" * 24, "Id": "m" * 24, "Seq": 9, "Rev": 12, "Hidden": hidden}
