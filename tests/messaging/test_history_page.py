"""A page of history in hand-written SQL (messaging.selectors.history) against the ORM reading
it replaced (issue 19, session 5): for pages with replies (to deleted, hidden, media and
sender-less messages, on the page and off it), attachments, deleted, hidden and edited
messages, reactions, left members, read pointers and partners, the selectors return the same
instances with the same related objects, and the REST and socket renderings are the same to
the byte. `_orm_*` below are the previous implementations, kept here as the reference."""

import io
import json

import pytest
from django.db.models import Count, Prefetch, Q
from django.utils import timezone
from PIL import Image
from rest_framework.renderers import JSONRenderer

from accounts.models import User
from gateway.protocols import expresschat
from messaging import selectors, services, uploads
from messaging.models import Attachment, ChatRequest, Conversation, Membership, Message, Reaction
from messaging.selectors.history import REACTIONS_SHOWN, ConversationPage, ReactionCount
from messaging.serializers import MessageOutput, MessagePageOutput

from .conftest import direct, group, leave, self_chat, send

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


# --- the previous implementations -----------------------------------------------------------


def _orm_history(user, conversation_id, *, before=None, after=None, limit=None, include_left=True):
    membership = (
        Membership.objects.select_related("conversation")
        .filter(user=user, conversation__public_id=conversation_id)
        .first()
    )
    assert membership is not None and (include_left or membership.left_at is None)
    qs = Message.objects.filter(conversation_id=membership.conversation_id)
    if membership.left_seq is not None:
        qs = qs.filter(seq__lte=membership.left_seq)
    if before is not None:
        qs = qs.filter(seq__lt=before)
    if after is not None:
        qs = qs.filter(seq__gt=after).order_by("seq")
    else:
        qs = qs.order_by("-seq")
    quoted = Prefetch("reply_to", queryset=Message.objects.select_related("sender"))
    page = limit or 50
    return membership.conversation, list(qs.prefetch_related("sender", quoted, "attachment")[:page])


def _orm_reactions(messages, viewer):
    pks = [m.pk for m in messages if m.hidden_at is None and m.deleted_at is None]
    rows = (
        Reaction.objects.filter(message_id__in=pks)
        .values("message_id", "emoji")
        .annotate(count=Count("id"), mine=Count("id", filter=Q(user_id=viewer.pk)))
        .order_by("message_id", "-count", "emoji")
    )
    found = {}
    for row in rows:
        shown = found.setdefault(row["message_id"], [])
        if len(shown) < REACTIONS_SHOWN:
            shown.append(ReactionCount(row["emoji"], row["count"], row["mine"] > 0))
    return found


def _orm_pointers(conversation, viewer):
    rows = list(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
            "user_id", "user__public_id", "last_read_seq", "user__read_receipts_enabled"
        )
    )
    own = next((enabled for pk, _id, _seq, enabled in rows if pk == viewer.pk), None)
    viewer_enabled = (
        User.objects.filter(pk=viewer.pk).values_list("read_receipts_enabled", flat=True).get()
        if own is None
        else own
    )
    return {p: s for pk, p, s, enabled in rows if pk == viewer.pk or (viewer_enabled and enabled)}


def _orm_partner(conversation, viewer):
    membership = (
        Membership.objects.filter(conversation=conversation)
        .exclude(user=viewer)
        .select_related("user")
        .first()
    )
    if membership is not None:
        return membership.user
    request = ChatRequest.objects.filter(conversation=conversation).select_related("recipient").first()
    return request.recipient if request is not None and request.recipient_id != viewer.pk else None


def _orm_conversation_page(user, conversation_id, kind, **kwargs):
    conversation, messages = _orm_history(user, conversation_id, **kwargs)
    pointers = _orm_pointers(conversation, user) if kind != Conversation.Kind.SELF else {}
    partner = _orm_partner(conversation, user) if kind == Conversation.Kind.DIRECT else None
    return ConversationPage(conversation, messages, pointers, partner, _orm_reactions(messages, user))


# --- comparing ------------------------------------------------------------------------------


def fields(instance) -> dict | None:
    """Every column of a model instance (None stays None)."""
    if instance is None:
        return None
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def cached(instance, name: str):
    """The related object `name` as cached on the instance: never a query."""
    field = type(instance)._meta.get_field(name)
    return field.get_cached_value(instance, default=None)


def described(message: Message) -> dict:
    """A message with every related object a reader of a page may touch, read from the caches
    only (a missing cache shows as None where the id is set, and the comparison fails)."""
    reply = cached(message, "reply_to")
    attachment = cached(message, "attachment")
    return {
        "message": fields(message),
        "state": (message._state.adding, message._state.db),
        "sender": fields(cached(message, "sender")),
        "reply_to": fields(reply),
        "reply_sender": fields(cached(reply, "sender")) if reply is not None else None,
        "attachment": fields(attachment),
        "attachment_message": (
            Message.attachment.field.remote_field.get_cached_value(attachment, default=None) is message
            if attachment is not None
            else None
        ),
        "has_sender": message.sender_id is None or cached(message, "sender") is not None,
        "has_reply": message.reply_to_id is None or reply is not None,
    }


def png() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (200, 30, 30)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def attach(chat_user, data: io.BytesIO | bytes, name: str) -> Attachment:
    file = data if isinstance(data, io.BytesIO) else io.BytesIO(data)
    size = len(file.getvalue())
    return uploads.upload_create(user=chat_user.user, file=file, name=name, size=size, declared_type="")


def fill(a, b, chat: Conversation) -> list[Message]:
    """Every kind of message a page can hold, in one conversation between a and b."""
    now = timezone.now()
    first = send(a, chat, "the first, quoted from far below")
    for i in range(12):
        send(b if i % 3 else a, chat, f"filler {i}")
    photo = send(a, chat, "a caption", attachment_id=attach(a, png(), "dot.png").public_id)
    bare_file = send(b, chat, None, attachment_id=attach(b, PDF, "a.pdf").public_id)
    edited = send(b, chat, "before the edit")
    services.message_edit(user=b.user, message_id=edited.public_id, content="after the edit")
    deleted = send(a, chat, "regret")
    services.message_delete(user=a.user, message_id=deleted.public_id)
    hidden = send(b, chat, "rude")
    Message.objects.filter(pk=hidden.pk).update(hidden_at=now)
    hidden_photo = send(a, chat, "", attachment_id=attach(a, png(), "x.png").public_id)
    Message.objects.filter(pk=hidden_photo.pk).update(hidden_at=now)
    orphan = send(b, chat, "my sender is gone")
    Message.objects.filter(pk=orphan.pk).update(sender=None)
    replies = [
        send(b, chat, "quoting the first", reply_to=first.public_id),
        send(a, chat, "quoting the photo", reply_to=photo.public_id),
        send(b, chat, "quoting the deleted", reply_to=deleted.public_id),
        send(a, chat, "quoting the hidden", reply_to=hidden.public_id),
        send(a, chat, "quoting the orphan", reply_to=orphan.public_id),
        send(b, chat, "quoting the edited", reply_to=edited.public_id),
        send(a, chat, "a" * 300),
    ]
    replies.append(send(b, chat, "quoting a long one", reply_to=replies[-1].public_id))
    replies.append(send(a, chat, "quoting a reply", reply_to=replies[0].public_id))
    for message, who, emoji in [
        (first, a, "👍"),
        (first, b, "👍"),
        (first, b, "🎉"),
        (first, a, "🔥"),  # ties with 🎉: by emoji then
        (photo, b, "❤️"),
        (replies[0], a, "😂"),
        (replies[2], b, "👍"),
        (edited, a, "🤔"),
    ]:
        services.reaction_add(user=who.user, message_id=message.public_id, emoji=emoji)
    # Reactions left on a message hidden or deleted since: never shown.
    Reaction.objects.create(message=hidden, user=a.user, emoji="👀")
    Reaction.objects.create(message=deleted, user=b.user, emoji="👀")
    return [first, photo, bare_file, edited, deleted, hidden, hidden_photo, orphan, *replies]


WINDOWS = [
    {},
    {"limit": 5},
    {"limit": 200},
    {"before": 20, "limit": 7},
    {"before": 3},
    {"before": 1},
    {"after": 10, "limit": 6},
    {"after": 0},
    {"after": 15, "before": 22},
    {"after": 999},
    {"before": 2**70},  # past any bigint: no bound
    {"after": 2**70},  # nothing after it
    {"after": 2**63 - 1},
]


def assert_same_history(user, chat: Conversation, **window) -> None:
    conversation, messages = selectors.message_history(user=user, conversation_id=chat.public_id, **window)
    old_conversation, old_messages = _orm_history(user, chat.public_id, **window)
    assert fields(conversation) == fields(old_conversation)
    assert [described(m) for m in messages] == [described(m) for m in old_messages]
    assert selectors.message_reactions(messages=messages, viewer=user) == _orm_reactions(old_messages, user)


def test_history_pages_hold_the_same_instances_as_the_orm_read(alice, bob):
    chat = direct(alice, bob)
    fill(alice, bob, chat)
    for window in WINDOWS:
        for user in (alice.user, bob.user):
            assert_same_history(user, chat, **window)


def test_history_of_a_member_who_left_is_the_same_as_the_orm_read(alice, bob, carol):
    chat = group(alice, bob, carol)
    fill(alice, bob, chat)
    leave(carol, chat)
    send(alice, chat, "after carol left")
    for window in WINDOWS:
        assert_same_history(carol.user, chat, **window)
        assert_same_history(alice.user, chat, **window)


def test_conversation_pages_are_the_same_as_the_orm_read(alice, bob, carol, dave):
    chat = direct(alice, bob)
    fill(alice, bob, chat)
    services.conversation_mark_read(user=bob.user, conversation_id=chat.public_id, up_to_seq=9)
    room = group(alice, bob, carol, dave)
    fill(carol, bob, room)
    services.conversation_mark_read(user=carol.user, conversation_id=room.public_id, up_to_seq=4)
    leave(dave, room)
    User.objects.filter(pk=bob.user.pk).update(read_receipts_enabled=False)
    notes = self_chat(alice)
    send(alice, notes, "a note")
    gone = direct(alice, carol)
    send(carol, gone, "bye")
    leave(carol, gone)
    cases = [
        (alice.user, chat, "direct"),
        (bob.user, chat, "direct"),
        (alice.user, gone, "direct"),  # the partner left: still the partner, no pointer
        (carol.user, gone, "direct"),
        (alice.user, room, "group"),
        (carol.user, room, "group"),
        (dave.user, room, "group"),  # left: reads up to then, its own pointer gone
        (alice.user, notes, "self"),
    ]
    for user, conversation, kind in cases:
        for window in ({}, {"limit": 4}, {"before": 10}):
            new = selectors.conversation_page(
                user=user, conversation_id=conversation.public_id, kind=kind, **window
            )
            old = _orm_conversation_page(user, conversation.public_id, kind, **window)
            assert fields(new.conversation) == fields(old.conversation)
            assert [described(m) for m in new.messages] == [described(m) for m in old.messages]
            assert new.read_pointers == old.read_pointers
            assert fields(new.partner) == fields(old.partner)
            assert new.reactions == old.reactions


def test_the_partner_while_a_chat_request_waits_is_its_recipient_as_before(alice, bob):
    request, _created = services.chat_request_create(user=alice.user, other_user_id=bob.id)
    send(alice, request.conversation, "may I?")
    chat = request.conversation.public_id
    new = selectors.conversation_page(user=alice.user, conversation_id=chat, kind="direct")
    old = _orm_conversation_page(alice.user, chat, "direct")
    assert fields(new.partner) == fields(old.partner) and new.partner.pk == bob.user.pk
    assert new.read_pointers == old.read_pointers == {alice.id: 1}  # a sender has read its own


def test_a_page_renders_without_further_queries(alice, bob, carol, django_assert_num_queries):
    chat = direct(alice, bob)
    fill(alice, bob, chat)
    page = selectors.conversation_page(user=alice.user, conversation_id=chat.public_id, kind="direct")
    rest_page = selectors.message_page(user=alice.user, conversation_id=chat.public_id)
    with django_assert_num_queries(0):
        [
            expresschat.personal_message(m, page.read_pointers, page.reactions.get(m.pk, ()))
            for m in page.messages
        ]
        [
            expresschat.group_message(m, page.read_pointers, page.reactions.get(m.pk, ()))
            for m in page.messages
        ]
        json.dumps(MessagePageOutput(rest_page).data)


def test_rest_and_socket_renderings_are_byte_for_byte_those_of_the_orm_read(alice, bob, carol, client_for):
    chat = direct(alice, bob)
    fill(alice, bob, chat)
    room = group(alice, bob, carol)
    fill(carol, alice, room)
    renderer = JSONRenderer()
    for conversation in (chat, room):
        for query, window in [
            ("", {}),
            ("?limit=3", {"limit": 3}),
            ("?before=12&limit=5", {"before": 12, "limit": 5}),
            ("?after=3&limit=4", {"after": 3, "limit": 4}),
            ("?after=3&limit=200", {"after": 3, "limit": 200}),
        ]:
            response = client_for(alice).get(f"/api/conversations/{conversation.public_id}/messages/{query}")
            assert response.status_code == 200
            old_conversation, old_messages = _orm_history(alice.user, conversation.public_id, **window)
            limit = window.get("limit", 50)
            full = len(old_messages) == limit
            last = old_messages[-1].seq if old_messages and full else None
            catching_up = "after" in window
            next_before = last if last is not None and not catching_up and last > 1 else None
            next_after = last if catching_up else None
            # As the DRF serializer renders the ORM's page (MessagePageOutput no longer uses it).
            context = {
                "conversation": old_conversation,
                "reactions": _orm_reactions(old_messages, alice.user),
            }
            old_body = {
                "results": MessageOutput(old_messages, many=True, context=context).data,
                "next_before": next_before,
                "next_after": next_after,
            }
            assert response.content == renderer.render(old_body)
    for conversation, kind, render in [
        (chat, "direct", expresschat.personal_message),
        (room, "group", expresschat.group_message),
    ]:
        new = selectors.conversation_page(user=alice.user, conversation_id=conversation.public_id, kind=kind)
        old = _orm_conversation_page(alice.user, conversation.public_id, kind)
        new_wire = [render(m, new.read_pointers, new.reactions.get(m.pk, ())) for m in new.messages]
        old_wire = [render(m, old.read_pointers, old.reactions.get(m.pk, ())) for m in old.messages]
        # The same fields in the same order; within ReadStatus the members come in membership
        # order now, where the ORM read took them in the table's physical order (no ORDER BY),
        # which moves as read pointers are updated: compared as mappings.
        assert new_wire == old_wire
        assert [list(m) for m in new_wire] == [list(m) for m in old_wire]
    notes = self_chat(alice)
    send(alice, notes, "note", reply_to=None)
    new = selectors.conversation_page(user=alice.user, conversation_id=notes.public_id, kind="self")
    old = _orm_conversation_page(alice.user, notes.public_id, "self")
    assert [expresschat.self_message(m) for m in new.messages] == [
        expresschat.self_message(m) for m in old.messages
    ]
