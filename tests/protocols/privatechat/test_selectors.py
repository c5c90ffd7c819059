"""The private chat protocol's reads: what a room shows, and three queries however many rooms
a user has."""

import pytest

from accounts import app_logins, tenancy
from gateway.protocols.privatechat import selectors
from messaging import services as msg_services

pytestmark = pytest.mark.django_db
PASSWORD = "a long password 1"


@pytest.fixture
def people(db):
    app = tenancy.app_create(name="Private chat")
    return [app_logins.app_user_register(app=app, username=f"user{i}", password=PASSWORD) for i in range(6)]


def _chat(a, b, texts):
    conversation, _, _ = msg_services.direct_conversation_get_or_create(user=a, other_user_id=b.public_id)
    for text in texts:
        msg_services.message_send(user=a, conversation_id=conversation.public_id, content=text)
    return conversation


def test_active_rooms_take_three_queries_however_many(people, django_assert_num_queries):
    me, *others = people
    _chat(me, others[0], ["one"])
    with django_assert_num_queries(3):  # the rooms, their members, their messages
        few = selectors.active_rooms(user=me)
    for other in others[1:]:
        _chat(other, me, ["hi", "there"])
    with django_assert_num_queries(3):
        many = selectors.active_rooms(user=me)
    assert len(few) == 1 and len(many) == 5


def test_unread_both_ways_and_read_flags(people):
    alice, bob = people[:2]
    conversation = _chat(alice, bob, ["a1", "a2"])
    msg_services.message_send(user=bob, conversation_id=conversation.public_id, content="b1")
    (room,) = selectors.active_rooms(user=alice)
    # Bob's send moved his own pointer past alice's two; alice has not read bob's.
    assert [(who.username, message_id) for message_id, who in room.unread] == [("user0", room.last.id)]
    assert room.last.text == "b1" and room.last.read is False
    msg_services.conversation_mark_read(user=alice, conversation_id=conversation.public_id)
    (room,) = selectors.active_rooms(user=alice)
    assert room.unread == [] and room.last.read is True
    lines = selectors.room_lines(conversation_id=conversation.public_id)
    assert [(line.text, line.read) for line in lines] == [("a1", True), ("a2", True), ("b1", True)]


def test_a_room_is_active_once_it_has_a_message_or_for_who_opened_it(people):
    alice, bob = people[:2]
    _chat(alice, bob, [])
    assert len(selectors.active_rooms(user=alice)) == 1
    assert selectors.active_rooms(user=bob) == []
    _chat(alice, bob, ["hello"])
    assert len(selectors.active_rooms(user=bob)) == 1
