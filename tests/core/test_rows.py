"""`rows.made`: a model instance from a full row, as `Model.from_db` makes it for a QuerySet,
without `Model.__init__` (chatproject/core/rows.py)."""

import pytest
from django.db import connection
from django.db.models.signals import post_init

from chatproject.core import rows
from messaging.models import Conversation, Membership, Message

pytestmark = pytest.mark.django_db


def _row(instance) -> tuple:
    return tuple(getattr(instance, field.attname) for field in rows.concrete_fields(type(instance)))


def _same(made, reference) -> None:
    assert type(made) is type(reference)
    assert {k: v for k, v in made.__dict__.items() if k != "_state"} == {
        k: v for k, v in reference.__dict__.items() if k != "_state"
    }
    assert list(made.__dict__) == list(reference.__dict__)
    assert (
        (made._state.adding, made._state.db)
        == (reference._state.adding, reference._state.db)
        == (False, "default")
    )
    assert made._state.fields_cache == {}


def test_an_instance_made_from_a_row_is_the_one_from_db_makes(alice, bob):
    from messaging.services import direct_conversation_get_or_create, message_send

    conversation, _partner, _created = direct_conversation_get_or_create(
        user=alice.user, other_user_id=bob.user.public_id
    )
    message, _ = message_send(user=alice.user, conversation_id=conversation.public_id, content="hello")
    membership = Membership.objects.get(conversation=conversation, user=alice.user)
    for stored in (
        Message.objects.get(pk=message.pk),
        Conversation.objects.get(pk=conversation.pk),
        membership,
    ):
        model = type(stored)
        reference = model.from_db("default", [f.attname for f in rows.concrete_fields(model)], _row(stored))
        _same(rows.made(model, "default", _row(stored)), reference)
    # Its related objects load as a QuerySet's would, and it compares equal to the stored one.
    again = rows.made(Message, "default", _row(Message.objects.get(pk=message.pk)))
    assert again == message and again.sender == alice.user and again.conversation == conversation


def test_instance_reads_a_row_of_the_models_columns(alice):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(connection, 'u', rows.concrete_fields(type(alice.user)))} "
            f"FROM {rows.table(connection, type(alice.user))} u WHERE u.id = %s",
            [alice.user.pk],
        )
        (row,) = cursor.fetchall()
    user = rows.instance(connection, type(alice.user), row)
    assert user == alice.user and user.display_name == alice.user.display_name and not user._state.adding


def test_a_model_with_init_receivers_goes_through_from_db(alice):
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Conversation)
    try:
        conversation = Conversation.objects.filter(memberships__user=alice.user).first()
        made = rows.made(Conversation, "default", _row(conversation))
    finally:
        post_init.disconnect(receiver, sender=Conversation)
    assert seen and seen[-1] is made
