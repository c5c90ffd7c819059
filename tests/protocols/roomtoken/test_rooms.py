"""Rooms on chat requests (store services and selectors): who may join which room, what a join
does to the request, tokens per app and namespace (spec §8.2, §8.12)."""

import pytest

from accounts import tenancy
from chatproject.core.errors import ApplicationError
from gateway.protocols.roomtoken.store import selectors as rooms
from gateway.protocols.roomtoken.store.models import Room
from gateway.protocols.roomtoken.store.services import CUSTOMER, VENDOR, room_join, room_leave
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
    # Neither side lists it any more; the recipient may still change their mind.
    for who in (customer, artisan):
        assert rooms.rooms_of_user(user=who.user, namespace="customer") == []
    join(artisan, role=VENDOR, other="c1")
    assert members(room) == {"c1", "a1"}
    for who in (customer, artisan):
        assert [r.pk for r in rooms.rooms_of_user(user=who.user, namespace="customer")] == [room.pk]


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


# --- leave-room (spec §4.7): the party's membership ends, their seat stays theirs ----------------


def leave(who, token="tok", namespace="customer") -> Room:
    return room_leave(user=who.user, namespace=namespace, token=token)


def accepted_room(market) -> Room:
    _app, customer, artisan, _stranger = market
    room = join(customer).room
    join(artisan, role=VENDOR, other="c1")
    return room


def test_leaving_ends_the_partys_membership_and_keeps_the_room(market):
    _app, customer, artisan, _stranger = market
    room = accepted_room(market)
    assert leave(artisan).pk == room.pk
    assert members(room) == {"c1"}
    room.refresh_from_db()
    assert (room.customer, room.vendor) == (customer.user, artisan.user)  # the seat stays
    # The artisan can no longer write; the customer can, and only they get it.
    chat_id = room.conversation.public_id
    with pytest.raises(ApplicationError) as refused:
        msg_services.message_send(user=artisan.user, conversation_id=chat_id, content="still here")
    assert refused.value.code == "not_found"
    msg_services.message_send(user=customer.user, conversation_id=chat_id, content="while away")
    # The room is no longer listed for the artisan, and neither side's presence is the other's.
    assert rooms.rooms_of_user(user=artisan.user, namespace="customer") == []
    assert [
        (r.token, r.someone_left) for r in rooms.rooms_of_user(user=customer.user, namespace="customer")
    ] == [("tok", True)]
    assert rooms.room_infos_of_user(user_id=customer.user.public_id) == []
    leave(artisan)  # leaving again changes nothing
    assert members(room) == {"c1"}


def test_the_party_who_left_gets_back_in_with_the_action_that_put_them_there(market):
    _app, customer, artisan, _stranger = market
    room = accepted_room(market)
    chat_id = room.conversation.public_id
    leave(artisan)
    msg_services.message_send(user=customer.user, conversation_id=chat_id, content="while away")
    join(artisan, role=VENDOR, other="c1")  # accept-room
    assert members(room) == {"c1", "a1"}
    assert [r.someone_left for r in rooms.rooms_of_user(user=customer.user, namespace="customer")] == [False]
    assert len(rooms.room_infos_of_user(user_id=customer.user.public_id)) == 1
    # What was written meanwhile reaches them through history, and counts as unread.
    _conversation, messages = msg_selectors.message_history(user=artisan.user, conversation_id=chat_id)
    assert [m.content for m in messages] == ["while away"]
    assert msg_selectors.unread_total(user=artisan.user) == 1
    leave(customer)
    join(customer)  # join-room
    assert members(room) == {"c1", "a1"}


def test_a_stranger_cannot_take_a_vacated_seat(market):
    _app, customer, artisan, stranger = market
    room = accepted_room(market)
    leave(artisan)
    for role, other in ((VENDOR, "c1"), (CUSTOMER, "a1")):
        with pytest.raises(ApplicationError) as refused:
            join(stranger, role=role, other=other)
        assert refused.value.message == "You are not a member of this rooms"
    with pytest.raises(ApplicationError):
        leave(stranger)
    assert members(room) == {"c1"}
    room.refresh_from_db()
    assert room.vendor == artisan.user


def test_a_requester_who_left_a_pending_room_comes_back_by_joining(market):
    _app, customer, artisan, _stranger = market
    room = join(customer).room
    leave(customer)
    assert members(room) == set()
    # The artisan accepting does not bring the customer back; the customer joining does.
    join(artisan, role=VENDOR, other="c1")
    assert members(room) == {"a1"}
    join(customer)
    assert members(room) == {"c1", "a1"}


def test_a_recipient_who_never_accepted_cannot_leave(market):
    _app, customer, artisan, _stranger = market
    room = join(customer).room
    with pytest.raises(ApplicationError) as refused:
        leave(artisan)
    assert refused.value.code == "not_found"
    assert members(room) == {"c1"}


# --- races and query counts ------------------------------------------------------------------


def test_a_token_taken_between_lookup_and_insert_joins_the_room_that_won(market, monkeypatch):
    """Two `join-room` for one new token at once: both miss the room, the second insert hits the
    unique constraint; its chat request and conversation roll back with it and it joins the
    room that won (here the artisan, who thereby accepts the customer's request)."""
    from gateway.protocols.roomtoken.store import services

    _app, customer, artisan, _stranger = market
    won = join(customer).room
    real_find, misses = services.room_find, []

    def stale_find(**kwargs):
        if not misses:
            misses.append(kwargs)
            return None  # what the loser saw before the winner committed
        return real_find(**kwargs)

    monkeypatch.setattr(services, "room_find", stale_find)
    lost = join(artisan, role=VENDOR, other="c1")
    assert misses and not lost.created and lost.room.pk == won.pk
    assert Room.objects.count() == 1 and ChatRequest.objects.count() == 1
    assert ChatRequest.objects.get().state == "accepted" and members(won) == {"c1", "a1"}
    assert msg_selectors.conversation_list_for_user(user=artisan.user)[0].id == won.conversation.public_id


@pytest.mark.django_db(transaction=True)
def test_concurrent_joins_of_one_new_token_make_one_room(market):
    import threading

    from django.db import connection

    _app, customer, _artisan, _stranger = market
    for attempt in range(3):
        token, barrier, results = f"race-{attempt}", threading.Barrier(2), []

        def run(token=token, barrier=barrier, results=results):
            try:
                barrier.wait()
                results.append(join(customer, token))
            except Exception as error:  # noqa: BLE001 - the assertion below shows it
                results.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert all(not isinstance(r, Exception) for r in results), results
        assert len({r.room.pk for r in results}) == 1 and sum(r.created for r in results) <= 1
        room = Room.objects.get(token=token)
        assert ChatRequest.objects.filter(conversation=room.conversation).count() == 1
    # The losers' requests and conversations rolled back: one request per room, no orphans.
    assert ChatRequest.objects.count() == Room.objects.count() == 3


def test_listing_rooms_costs_one_query_however_many(market, django_assert_num_queries):
    _app, customer, artisan, stranger = market
    join(customer, "t0")
    with django_assert_num_queries(1):
        infos = [rooms.room_info(r) for r in rooms.rooms_of_user(user=artisan.user, namespace="customer")]
    assert len(infos) == 1
    for i in range(1, 6):
        join(customer if i % 2 else stranger, f"t{i}")
    with django_assert_num_queries(1):
        infos = [rooms.room_info(r) for r in rooms.rooms_of_user(user=artisan.user, namespace="customer")]
    assert len(infos) == 6 and {i.vendor for i in infos} == {"a1"}
    with django_assert_num_queries(1):
        assert len(rooms.room_infos_of_user(user_id=artisan.user.public_id)) == 6
