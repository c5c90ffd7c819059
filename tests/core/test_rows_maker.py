"""chatproject.core.rows.maker: the instances it makes from a row are those `Model.from_db` makes
(the same __dict__, in the same order, the same state), with or without its fast path."""

import pytest
from django.db import connection
from django.db.models import signals

from accounts.models import User
from chatproject.core import rows
from messaging.models import Attachment, Conversation, Membership, Message

from ..messaging.conftest import direct, send

pytestmark = pytest.mark.django_db


def selected(model, pk) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(connection, 't', rows.concrete_fields(model))} "  # noqa: S608
            f"FROM {rows.table(connection, model)} t WHERE {rows.q(connection, 't', model._meta.pk.column)} = %s",
            [pk],
        )
        return cursor.fetchone()


def as_made(instance) -> tuple:
    state = instance._state
    # The state's cache of related objects is made empty on first use (`Model.__init__` uses it
    # when it sets a foreign key's column to a value): whether it was is not what an instance is.
    cache = state.__dict__.get("fields_cache")
    return (
        type(instance),
        [(k, v) for k, v in instance.__dict__.items() if k != "_state"],
        list(instance.__dict__)[0],
        (state.adding, state.db, cache or {}, sorted(set(state.__dict__) - {"fields_cache"})),
    )


def test_maker_makes_what_from_db_makes_for_the_models_a_history_page_reads(alice, bob):
    chat = direct(alice, bob)
    message = send(alice, chat, "hello")
    membership = Membership.objects.get(conversation=chat, user=alice.user)
    attachment = Attachment.objects.create(
        uploader=alice.user,
        file="u/x.png",
        name="x.png",
        content_type="image/png",
        kind="image",
        size=3,
        width=3,
        height=2,
    )
    for model, pk in [
        (Message, message.pk),
        (User, alice.user.pk),
        (Membership, membership.pk),
        (Conversation, chat.pk),
        (Attachment, attachment.pk),
    ]:
        row = selected(model, pk)
        names = [f.attname for f in rows.concrete_fields(model)]
        assert rows._fast(model) == tuple(names)
        made = rows.maker(connection, model)(row)
        reference = model.from_db(
            connection.alias, names, rows.converted(connection, rows.concrete_fields(model), row)
        )
        assert as_made(made) == as_made(reference)
        assert made == model.objects.get(pk=pk)
    attachment_made = rows.maker(connection, Attachment)(selected(Attachment, attachment.pk))
    assert attachment_made.file.name == "u/x.png"  # the file descriptor still wraps the name


def test_maker_goes_through_from_db_when_a_receiver_watches_instances_being_made(alice, bob):
    message = send(alice, direct(alice, bob), "hello")
    seen = []

    def receiver(sender, instance, **kwargs) -> None:
        seen.append(instance)

    signals.post_init.connect(receiver, sender=Message)
    try:
        made = rows.maker(connection, Message)(selected(Message, message.pk))
    finally:
        signals.post_init.disconnect(receiver, sender=Message)
    assert seen == [made] and made._state.adding is False
