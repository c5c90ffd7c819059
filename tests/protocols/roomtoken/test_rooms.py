"""Rooms on chat requests (store services and selectors): who may join which room, what a join
does to the request, tokens per app and namespace (spec §8.2, §8.12)."""

import pytest

from accounts import tenancy
from chatproject.core.errors import ApplicationError
from gateway.protocols.roomtoken.store import selectors as rooms
from gateway.protocols.roomtoken.store.models import Room
from gateway.protocols.roomtoken.store.services import CUSTOMER, VENDOR, room_join
from messaging import selectors as msg_selectors
from messaging import services as msg_services
from messaging.models import ChatRequest, Membership

pytestmark = pytest.mark.django_db


def join(who, token="tok", *, role=CUSTOMER, other="a1", namespace="customer", room_id=None):
    return room_join(
        user=who.user, namespace=namespace, token=token, role=role, other_id=other, room_id=room_id
    )


def members(room: Room) -> set[str]:
    return set(
        Membership.objects.filter(conversation=room.conversation, left_at__isnull=True).values_list(
            "user__external_id", flat=True
        )
    )


def test_a_new_room_is_a_chat_request_of_its_own(market):
    _app, customer, artisan, _stranger = market
    joined = join(customer, room_id="r-1")
    room = joined.room
    assert joined.created and (room.customer, room.vendor, room.room_id) == (
        customer.user,
        artisan.user,
        "r-1",
    )
    request = ChatRequest.objects.get(conversation=room.conversation)
    assert (request.requester, request.recipient, request.state) == (customer.user, artisan.user, "pending")
    assert members(room) == {"c1"}
    # A second room of the same pair is another conversation (its own history).
    second = join(customer, "tok-2").room
    assert second.conversation_id != room.conversation_id


def test_the_vendor_can_open_a_room_too(market):
    _app, customer, artisan, _stranger = market
    room = join(artisan, role=VENDOR, other="c1").room
    assert (room.customer, room.vendor) == (customer.user, artisan.user)
    assert ChatRequest.objects.get(conversation=room.conversation).requester == artisan.user


def test_the_recipient_joining_accepts_and_the_requester_joining_changes_nothing(market):
    _app, customer, artisan, _stranger = market
    room = join(customer).room
    again = join(customer)
    assert not again.created and again.room.pk == room.pk and members(room) == {"c1"}
    join(artisan, role=VENDOR, other="c1")
    assert ChatRequest.objects.get(conversation=room.conversation).state == "accepted"
    assert members(room) == {"c1", "a1"}


def test_a_stranger_is_refused_whatever_ids_it_claims(market):
    """Spec §8.2: the original compared the payload's ids; here the stored room decides."""
    _app, customer, _artisan, stranger = market
    room = join(customer).room
    for role, other in ((CUSTOMER, "a1"), (VENDOR, "c1"), (CUSTOMER, "c1")):
        with pytest.raises(ApplicationError) as refused:
            join(stranger, role=role, other=other)
        assert refused.value.message == "You are not a member of this rooms"
    assert members(room) == {"c1"}
    with pytest.raises(ApplicationError):
        rooms.room_get_for_party(user=stranger.user, namespace="customer", token="tok")


def test_a_declined_request_refuses_the_requester(market):
    _app, customer, artisan, _stranger = market
    room = join(customer).room
    request = ChatRequest.objects.get(conversation=room.conversation)
    msg_services.chat_request_decline(user=artisan.user, request_id=request.public_id)
    with pytest.raises(ApplicationError) as refused:
        join(customer)
    assert refused.value.message == "The chat request was declined"


def test_tokens_are_per_namespace_and_per_app(market):
    app, customer, _artisan, _stranger = market
    here = join(customer).room
    there = join(customer, namespace="artisans").room
    assert here.pk != there.pk and here.conversation_id != there.conversation_id
    other_app = tenancy.app_create(name="Elsewhere")
    for external_id in ("c1", "a1"):
        tenancy.external_user_upsert(app=other_app, external_id=external_id, name=external_id)
    outsider = tenancy.external_user_upsert(app=other_app, external_id="c1", name="c1")[0]
    theirs = room_join(user=outsider, namespace="customer", token="tok", role=CUSTOMER, other_id="a1").room
    assert theirs.pk != here.pk and theirs.app == other_app
    assert theirs.vendor.app == other_app  # the other party is looked up in the caller's app only


def test_bad_rooms_are_refused_and_store_nothing(market):
    _app, customer, _artisan, _stranger = market
    for kwargs, message in (
        ({"token": ""}, "roomToken is required"),
        ({"token": None}, "roomToken is required"),
        ({"token": "x" * 192}, "roomToken is required"),
        ({"token": "a\x00b"}, "roomToken is required"),
        ({"namespace": "admin"}, "Invalid namespace"),
        ({"other": "nobody"}, "Invalid Vendor id"),
        ({"other": "c1"}, "Invalid Vendor id"),  # oneself
        ({"other": None}, "Invalid Vendor id"),
        ({"role": VENDOR, "other": "zz"}, "Invalid Customer id"),
    ):
        with pytest.raises(ApplicationError) as refused:
            join(customer, **kwargs)
        assert refused.value.message == message
    assert not Room.objects.exists() and not ChatRequest.objects.exists()


def test_first_party_users_have_no_rooms(make_user):
    user = make_user("Pat")
    with pytest.raises(ApplicationError):
        room_join(user=user.user, namespace="customer", token="t", role=CUSTOMER, other_id="a1")


def test_rooms_of_a_user_are_per_namespace(market):
    _app, customer, artisan, stranger = market
    join(customer, "t1")
    join(stranger, "t2")
    join(customer, "t3", namespace="artisans")
    assert [r.token for r in rooms.rooms_of_user(user=artisan.user, namespace="customer")] == ["t1", "t2"]
    assert [r.token for r in rooms.rooms_of_user(user=customer.user, namespace="artisans")] == ["t3"]
    infos = rooms.room_infos_of_user(user_id=customer.user.public_id)
    assert sorted(i.token for i in infos) == ["t1", "t3"]
    info = infos[0]
    assert rooms.room_info_for_conversation(conversation_id=info.conversation_id) == info
    assert (info.customer, info.vendor) == ("c1", "a1") and info.other(
        customer.user.public_id
    ) == artisan.user.public_id


def test_the_recipient_sees_nothing_of_a_pending_room_but_the_request(market):
    _app, customer, artisan, _stranger = market
    room = join(customer).room
    msg_services.message_send(user=customer.user, conversation_id=room.conversation.public_id, content="hi")
    assert msg_selectors.conversation_list_for_user(user=artisan.user) == []
    assert msg_selectors.unread_total(user=artisan.user) == 0
    (view,) = msg_selectors.chat_requests_for_user(user=artisan.user)
    assert view.last_message == "hi"
