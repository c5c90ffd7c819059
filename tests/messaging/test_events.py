"""Events leave the services only after commit, to the right bus groups, and survive JSON."""

import json

import pytest
from django.db import transaction

from chatproject.core.errors import ApplicationError
from chatproject.core.ids import new_public_id
from chatproject.core.timefmt import iso_ms
from messaging import events, services
from messaging.models import Message

from .conftest import direct, group, self_chat, send

pytestmark = pytest.mark.django_db


class Rollback(Exception):
    pass


def groups_of(sent) -> list[set[str]]:
    # The order of user groups within one publish carries no meaning.
    return [set(groups) for groups, _event in sent]


def test_message_created_is_published_only_when_the_transaction_commits(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(alice, conversation)
    assert bus_sent == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(bus_sent) == 1


def test_message_send_in_direct_chat_publishes_to_both_members(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = services.message_send(
            user=alice.user, conversation_id=conversation.public_id, content="hi", client_message_id="c-1"
        )
    assert groups_of(bus_sent) == [{f"u.{alice.id}", f"u.{bob.id}"}]
    assert bus_sent[0][1] == {
        "type": "message.created",
        "actor": alice.id,
        "conversation": {"id": conversation.public_id, "kind": "direct"},
        "message": {
            "id": message.public_id,
            "seq": 1,
            "rev": 1,
            "kind": "text",
            "content": "hi",
            "sender_id": alice.id,
            "sender_name": "Alice",
            "client_message_id": "c-1",
            "created_at": iso_ms(message.created_at),
            "reply_to": None,
            "attachment": None,
        },
    }


def test_message_send_in_self_chat_publishes_to_the_user_only(
    alice, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send(alice, self_chat(alice))
    assert groups_of(bus_sent) == [{f"u.{alice.id}"}]
    assert bus_sent[0][1]["conversation"]["kind"] == "self"


def test_message_send_in_group_publishes_to_the_conversation_group(
    alice, bob, carol, bus_sent, django_capture_on_commit_callbacks
):
    conversation = group(alice, bob, carol)
    with django_capture_on_commit_callbacks(execute=True):
        send(bob, conversation)
    assert bus_sent[0][0] == [f"c.{conversation.public_id}"]


def test_nothing_is_published_when_the_transaction_rolls_back(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Rollback), transaction.atomic():
            send(alice, conversation)
            raise Rollback
    assert callbacks == []
    assert bus_sent == []
    assert not Message.objects.filter(conversation=conversation).exists()


def test_nothing_is_published_on_an_idempotent_retry(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=True):
        send(alice, conversation, client_message_id="c-1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        send(alice, conversation, client_message_id="c-1")
    assert callbacks == []
    assert len(bus_sent) == 1


@pytest.mark.parametrize("case", ["empty content", "non-member", "unknown conversation"])
def test_nothing_is_published_when_a_send_is_refused(
    alice, bob, carol, bus_sent, django_capture_on_commit_callbacks, case
):
    conversation = direct(bob, carol) if case == "non-member" else direct(alice, bob)
    conversation_id = new_public_id() if case == "unknown conversation" else conversation.public_id
    content = "" if case == "empty content" else "hi"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ApplicationError):
            services.message_send(user=alice.user, conversation_id=conversation_id, content=content)
    assert callbacks == []
    assert bus_sent == []


def test_mark_read_publishes_conversation_read_to_the_members(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = direct(alice, bob)
    send(bob, conversation)
    send(bob, conversation)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_mark_read(user=alice.user, conversation_id=conversation.public_id, up_to_seq=1)
    # First the reader's own counts, to the reader only (tests/presence covers them).
    assert [(groups, event["type"]) for groups, event in bus_sent[:1]] == [
        ([f"u.{alice.id}"], "conversation.unread")
    ]
    bus_sent = bus_sent[1:]
    assert groups_of(bus_sent) == [{f"u.{alice.id}", f"u.{bob.id}"}]
    assert bus_sent[0][1] == {
        "type": "conversation.read",
        "actor": alice.id,
        "conversation": {"id": conversation.public_id, "kind": "direct"},
        "seq": 1,
    }


def test_mark_read_in_group_publishes_to_the_conversation_group(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    conversation = group(alice, bob)
    send(bob, conversation)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_mark_read(user=alice.user, conversation_id=conversation.public_id)
    assert bus_sent.pop(0)[1]["type"] == "conversation.unread"  # to the reader; see tests/presence
    assert bus_sent == [
        (
            [f"c.{conversation.public_id}"],
            {
                "type": "conversation.read",
                "actor": alice.id,
                "conversation": {"id": conversation.public_id, "kind": "group"},
                "seq": 1,
            },
        )
    ]


def test_refused_mark_read_publishes_nothing(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    conversation = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ApplicationError):
            services.conversation_mark_read(
                user=alice.user, conversation_id=conversation.public_id, up_to_seq=-1
            )
    assert callbacks == []


def test_direct_conversation_creation_is_published_to_both_users_once(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        direct(bob, alice)
    assert callbacks == []
    assert groups_of(bus_sent) == [{f"u.{alice.id}", f"u.{bob.id}"}]
    assert bus_sent[0][1] == {
        "type": "conversation.created",
        "actor": alice.id,
        "actor_name": "Alice",
        "conversation": {"id": conversation.public_id, "kind": "direct"},
        "members": [{"id": alice.id, "name": "Alice"}, {"id": bob.id, "name": "Bob"}],
    }


def test_self_conversation_ensure_publishes_nothing(make_user, bus_sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        make_user()
    assert bus_sent == []


# Every builder's payload survives JSON (the in-memory layer would hide what Redis refuses).


def roundtrip(payload: dict) -> None:
    assert json.loads(json.dumps(payload)) == payload


def test_every_event_builder_payload_survives_json(alice, bob):
    conversation = direct(alice, bob)
    message = send(alice, conversation, "héllo ✓", client_message_id="c-1")
    roundtrip(events.message_payload(message, sender=alice.user))
    roundtrip(events.message_created(conversation=conversation, message=message, sender=alice.user))
    roundtrip(
        events.conversation_created(
            conversation=conversation, creator=alice.user, members=[alice.user, bob.user]
        )
    )
    roundtrip(events.conversation_read(conversation=conversation, reader=bob.user, seq=1))


def test_message_created_without_a_sender_survives_json(alice):
    message = send(alice, self_chat(alice))
    payload = events.message_created(conversation=message.conversation, message=message, sender=None)
    roundtrip(payload)
    assert (payload["actor"], payload["message"]["sender_id"], payload["message"]["sender_name"]) == (
        None,
        None,
        None,
    )


def test_published_events_survive_json(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        conversation = direct(alice, bob)
        send(alice, conversation)
        services.conversation_mark_read(user=bob.user, conversation_id=conversation.public_id)
    assert [event["type"] for _, event in bus_sent] == [
        "conversation.created",
        "message.created",
        "conversation.unread",
        "conversation.read",
    ]
    for groups, event in bus_sent:
        roundtrip(event)
        assert all(isinstance(g, str) for g in groups)
