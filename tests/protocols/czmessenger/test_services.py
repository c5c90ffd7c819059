"""The room store's services and selectors as plain functions: who may open, see and write."""

import pytest

from accounts import tenancy
from chatproject.core.errors import ApplicationError, ErrorCode
from gateway.protocols.czmessenger.store import selectors, services
from gateway.protocols.czmessenger.store.models import Room
from messaging.models import Conversation
from messaging.services import direct_conversation_get_or_create, message_send


def test_opening_a_room_makes_the_direct_conversation_of_the_two_users(market):
    _app, buyer, seller = market
    opened = services.room_open(user=seller, buyer_id="b9", seller_id="u1", creator="u1")
    assert opened.created and opened.room.room_id == "b9.u1"
    assert (opened.room.buyer, opened.room.seller) == (buyer, seller)
    existing, _, created = direct_conversation_get_or_create(user=buyer, other_user_id=seller.public_id)
    assert not created and existing == opened.room.conversation
    again = services.room_open(user=buyer, buyer_id="b9", seller_id="u1")
    assert not again.created and not again.reenabled and Room.objects.count() == 1


def test_a_pair_has_one_room_whichever_way_round_the_roles_are_named(market):
    _app, buyer, _seller = market
    services.room_open(user=buyer, buyer_id="b9", seller_id="u1")
    with pytest.raises(ApplicationError) as refused:
        services.room_open(user=buyer, buyer_id="u1", seller_id="b9")
    assert refused.value.code == ErrorCode.CONFLICT
    assert Conversation.objects.filter(kind="direct").count() == 1


@pytest.mark.parametrize(
    ("buyer_id", "seller_id", "code"),
    [
        ("b9", "b9", ErrorCode.INVALID),  # the same user twice
        ("b.9", "u1", ErrorCode.INVALID),  # a dot would make the room id ambiguous
        ("b9", "u.1", ErrorCode.INVALID),
        (None, "u1", ErrorCode.INVALID),
        ("b7", "u1", ErrorCode.PERMISSION_DENIED),  # the caller is neither party
        ("b9", "ghost", ErrorCode.NOT_FOUND),  # nobody of that id in the realm
    ],
)
def test_room_open_refuses(market, buyer_id, seller_id, code):
    _app, buyer, _seller = market
    with pytest.raises(ApplicationError) as refused:
        services.room_open(user=buyer, buyer_id=buyer_id, seller_id=seller_id)
    assert refused.value.code == code
    assert not Room.objects.exists()


def test_a_user_of_another_app_with_the_same_id_is_not_found(market):
    _app, buyer, _seller = market
    other = tenancy.app_create(name="Other")
    tenancy.external_user_upsert(app=other, external_id="u7")
    with pytest.raises(ApplicationError) as refused:
        services.room_open(user=buyer, buyer_id="b9", seller_id="u7")
    assert refused.value.code == ErrorCode.NOT_FOUND


def test_a_blocked_room_is_a_blocked_conversation_for_the_core_send(market):
    app, buyer, seller = market
    room = services.room_open(user=buyer, buyer_id="b9", seller_id="u1").room
    services.room_block(user=seller, room_id="b9.u1", block=True)
    for user in (buyer, seller):
        with pytest.raises(ApplicationError) as refused:
            message_send(user=user, conversation_id=room.conversation.public_id, content="hi")
        assert refused.value.code == ErrorCode.PERMISSION_DENIED
    services.room_block(user=seller, room_id="b9.u1", block=False)
    assert message_send(user=buyer, conversation_id=room.conversation.public_id, content="hi")[1]


def test_room_infos_name_both_parties_by_public_and_wire_ids(market):
    _app, buyer, seller = market
    room = services.room_open(user=buyer, buyer_id="b9", seller_id="u1").room
    info = selectors.room_info_for_conversation(conversation_id=room.conversation.public_id)
    assert (info.buyer, info.seller, info.buyer_id, info.seller_id) == (
        "b9",
        "u1",
        buyer.public_id,
        seller.public_id,
    )
    assert selectors.room_infos_of_user(user_id=seller.public_id) == [info]
    assert selectors.room_info_for_conversation(conversation_id="nope") is None
