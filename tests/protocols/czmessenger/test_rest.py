"""The REST routes of spec §5 through the real URLs, with tenant-signed tokens: envelopes,
statuses, snake_case keys, and the holes of spec §8 closed."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import tenancy
from chatproject.core.errors import ApplicationError
from gateway.protocols.czmessenger.store import services
from gateway.protocols.czmessenger.store.models import Room
from messaging.services import message_send
from tests.tenants.helpers import sign

BASE = "/v1/conversations"


@pytest.fixture
def world(market):
    app, buyer, seller = market
    opened = services.room_open(
        user=buyer,
        buyer_id="b9",
        seller_id="u1",
        shop_id="123",
        creator="b9",
        buyer_info={"name": "Le Vuong", "evil": "x"},
    )
    return app, buyer, seller, opened.room


def client_for(app, who: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {sign(app, who)}")


def send(user, room, text, cmid=None):
    return message_send(
        user=user, conversation_id=room.conversation.public_id, content=text, client_message_id=cmid
    )[0]


def put(client, url, body):
    return client.generic("PUT", url, json.dumps(body), content_type="application/json")


def test_every_route_refuses_a_request_without_a_valid_token(world):
    app, *_ = world
    anonymous, forged = Client(), Client(HTTP_AUTHORIZATION="Bearer not-a-token")
    for c in (anonymous, forged):
        for url in (
            f"{BASE}/rooms",
            f"{BASE}/rooms/unseen",
            f"{BASE}/rooms/b9.u1",
            f"{BASE}/messages?room_id=b9.u1",
        ):
            response = c.get(url)
            assert response.status_code == 401
            assert response.json() == {"status": False, "message": "Authentication Error"}


def test_rooms_list_shows_the_callers_side_only(world):
    app, buyer, seller, room = world
    send(buyer, room, "hello")
    body = client_for(app, "u1").get(f"{BASE}/rooms?user_id=u1&role=SELLER").json()
    assert body["user_id"] == "u1" and body["role"] == "SELLER"
    (listed,) = body["rooms"]
    assert listed["_id"] == "b9.u1" and listed["seller_unseen_messages"] == 1
    assert listed["buyer_info"] == {"name": "Le Vuong"}  # whitelisted keys only
    assert "buyer_unseen_messages" not in listed and "pinned_by_buyer" not in listed
    assert listed["seller_last_message"]["content"] == "hello"
    assert listed["seller_last_message"]["from"] == "b9" and listed["seller_last_message"]["is_seen"] is False
    # As a buyer, u1 has no rooms; and another user's list is forbidden.
    assert client_for(app, "u1").get(f"{BASE}/rooms?role=BUYER").json()["rooms"] == []
    assert client_for(app, "u1").get(f"{BASE}/rooms?user_id=b9&role=BUYER").status_code == 403


def test_name_filter_is_a_plain_substring_never_a_pattern(world):
    app, *_ = world
    c = client_for(app, "u1")
    assert len(c.get(f"{BASE}/rooms", {"role": "SELLER", "name": "vuong"}).json()["rooms"]) == 1
    assert c.get(f"{BASE}/rooms", {"role": "SELLER", "name": ".*"}).json()["rooms"] == []
    assert c.get(f"{BASE}/rooms", {"role": "SELLER", "name": "(a+)+$["}).status_code == 200


def test_a_non_party_sees_no_room_and_no_message(world, market):
    app, buyer, seller, room = world
    send(buyer, room, "secret")
    tenancy.external_user_upsert(app=app, external_id="eve", name="Eve")
    eve = client_for(app, "eve")
    assert eve.get(f"{BASE}/rooms/b9.u1").json() == {}
    assert eve.get(f"{BASE}/messages?room_id=b9.u1").json()["data"] == []
    assert eve.get(f"{BASE}/messages/unseen?room_id=b9.u1").json()["data"] == []
    assert put(eve, f"{BASE}/rooms/b9.u1/seen", {}).status_code == 400
    assert eve.delete(f"{BASE}/rooms/b9.u1").json() == {"status": False, "message": "Room not found!"}
    assert (
        eve.post(f"{BASE}/rooms/b9.u1/block", {"block": True}, content_type="application/json").status_code
        == 400
    )
    assert Room.objects.get().blocked_by == "" and not Room.objects.get().deleted_by_buyer
    # Another app's user with the same id is another realm.
    other = tenancy.app_create(name="Other")
    tenancy.external_user_upsert(app=other, external_id="u1")
    assert client_for(other, "u1").get(f"{BASE}/rooms/b9.u1").json() == {}


def test_messages_page_defaults_to_15_and_caps_the_limit(world):
    app, buyer, seller, room = world
    for i in range(105):
        send(buyer if i % 2 else seller, room, f"m{i}")
    c = client_for(app, "b9")
    page = c.get(f"{BASE}/messages?room_id=b9.u1").json()
    assert len(page["data"]) == 15 and page["data"][0]["content"] == "m104"
    assert page["filters"]["message_count"] == 15
    assert set(page["data"][0]) == {
        "_id",
        "room_id",
        "from",
        "to",
        "type",
        "content",
        "is_seen",
        "created_at",
        "updated_at",
    }
    assert len(c.get(f"{BASE}/messages?room_id=b9.u1&limit=100000").json()["data"]) == 100
    oldest = c.get(f"{BASE}/messages?room_id=b9.u1&limit=2&created_at=1").json()["data"]
    assert [m["content"] for m in oldest] == ["m0", "m1"]
    before = c.get(
        f"{BASE}/messages", {"room_id": "b9.u1", "limit": 50, "from": page["data"][-1]["created_at"]}
    )
    assert all(m["created_at"] < page["data"][-1]["created_at"] for m in before.json()["data"])
    assert c.get(f"{BASE}/messages?room_id=undefined").json() == {"room_id": 0, "filters": {}, "data": []}


def test_seen_marks_everything_and_unseen_counts_come_from_read_pointers(world):
    app, buyer, seller, room = world
    send(seller, room, "one")
    send(seller, room, "two")
    c = client_for(app, "b9")
    assert c.get(f"{BASE}/rooms/unseen?role=BUYER").json() == {
        "unseen_rooms": 1,
        "filters": {"user_id": "b9", "role": "BUYER"},
    }
    assert len(c.get(f"{BASE}/messages/unseen?room_id=b9.u1&user_id=b9").json()["data"]) == 2
    response = put(c, f"{BASE}/rooms/b9.u1/seen", {"user_id": "b9", "role": "BUYER"})
    assert response.status_code == 200 and response.json()["room"]["buyer_unseen_messages"] == 0
    assert c.get(f"{BASE}/rooms/unseen?role=BUYER").json()["unseen_rooms"] == 0
    assert all(
        m["is_seen"] for m in client_for(app, "u1").get(f"{BASE}/messages?room_id=b9.u1").json()["data"]
    )
    assert put(c, f"{BASE}/rooms/b9.nobody/seen", {}).json() == {
        "status": False,
        "message": "Room not found!",
    }


def test_pin_and_unpin_are_per_side(world):
    app, *_ = world
    c = client_for(app, "u1")
    assert c.post(f"{BASE}/rooms/b9.u1/pin", {"user_id": "u1"}, content_type="application/json").json() == {
        "status": True
    }
    assert len(c.get(f"{BASE}/rooms?role=SELLER&pinned=1").json()["rooms"]) == 1
    assert client_for(app, "b9").get(f"{BASE}/rooms?role=BUYER&pinned=1").json()["rooms"] == []
    unpinned = c.delete(f"{BASE}/rooms/b9.u1/pin", {"user_id": "u1"}, content_type="application/json").json()
    assert unpinned["status"] is True and unpinned["room"]["pinned_by_seller"] is None
    assert c.post(f"{BASE}/rooms/b9.zz/pin", {}, content_type="application/json").status_code == 400


def test_delete_hides_the_room_and_its_history_for_one_side_until_a_new_message(world):
    app, buyer, seller, room = world
    send(buyer, room, "before")
    c = client_for(app, "u1")
    deleted = c.delete(f"{BASE}/rooms/b9.u1").json()
    assert deleted["status"] is True and deleted["role"] == "SELLER" and deleted["deleted_at"].endswith("Z")
    assert c.get(f"{BASE}/rooms?role=SELLER").json()["rooms"] == []
    assert len(client_for(app, "b9").get(f"{BASE}/rooms?role=BUYER").json()["rooms"]) == 1
    send(buyer, room, "after")
    assert [m["content"] for m in c.get(f"{BASE}/messages?room_id=b9.u1").json()["data"]] == ["after"]
    assert len(c.get(f"{BASE}/rooms?role=SELLER").json()["rooms"]) == 1
    assert put(c, f"{BASE}/rooms/b9.u1/enable", {}).json() == {
        "status": False,
        "message": "Missing 'role' field",
    }
    enabled = put(c, f"{BASE}/rooms/b9.u1/enable", {"role": "SELLER"}).json()
    assert enabled["message"] == "Enable room successfully!" and enabled["room"]["deleted_by_seller"] is False


def test_block_only_the_blocking_side_unblocks_and_a_blocked_room_refuses_sends(world):
    app, buyer, seller, room = world
    b, s = client_for(app, "b9"), client_for(app, "u1")
    url = f"{BASE}/rooms/b9.u1/block"
    assert (
        b.post(url, {"block": False}, content_type="application/json").json()["message"]
        == "Room opened already!"
    )
    assert (
        b.post(url, {"block": True}, content_type="application/json").json()["room"]["blocked_by"] == "BUYER"
    )
    assert (
        b.post(url, {"block": True}, content_type="application/json").json()["message"]
        == "Room closed already!"
    )
    for user in (buyer, seller):
        with pytest.raises(ApplicationError, match="blocked"):
            send(user, room, "refused")
    assert s.post(url, {"block": False}, content_type="application/json").status_code == 403
    assert b.post(url, {"block": False}, content_type="application/json").json()["status"] is True
    assert send(seller, room, "open again").content == "open again"


def test_create_room_answers_and_refuses_like_the_original(world, market):
    app, *_ = world
    c = client_for(app, "b9")
    body = {"type": "BS", "buyer": "b9", "seller": "u1", "shop_id": "123", "creator": "b9"}
    assert c.post(f"{BASE}/rooms", body, content_type="application/json").json()["message"] == "Room exsits!"
    same = c.post(f"{BASE}/rooms", body | {"seller": "b9"}, content_type="application/json").json()
    assert same == {"status": False, "message": "Buyer is the same to seller"}
    dotted = c.post(f"{BASE}/rooms", body | {"seller": "u.1"}, content_type="application/json").json()
    assert dotted == {"status": False, "message": "Room can not created!"}
    assert (
        c.post(
            f"{BASE}/rooms", body | {"buyer": "x", "seller": "u1"}, content_type="application/json"
        ).status_code
        == 403
    )
    tenancy.external_user_upsert(app=app, external_id="u2", name="Shop U2")
    created = c.post(f"{BASE}/rooms", body | {"seller": "u2"}, content_type="application/json").json()
    assert created["status"] is True and created["room"]["_id"] == "b9.u2"
    client_for(app, "b9").delete(f"{BASE}/rooms/b9.u2")
    again = c.post(f"{BASE}/rooms", body | {"seller": "u2"}, content_type="application/json").json()
    assert again["message"] == "Room exists and re-enable room for seller and buyer"


def test_the_token_header_is_configurable(world, settings):
    app, *_ = world
    settings.CHAT = settings.CHAT | {"CZMESSENGER_TOKEN_HEADER": "X-Access-Token"}
    c = Client(HTTP_X_ACCESS_TOKEN=sign(app, "b9"))
    assert len(c.get(f"{BASE}/rooms?role=BUYER").json()["rooms"]) == 1


def test_the_rooms_list_costs_the_same_queries_for_one_room_or_many(world):
    app, buyer, seller, room = world
    send(buyer, room, "hi")
    c = client_for(app, "u1")
    with CaptureQueriesContext(connection) as one:
        assert len(c.get(f"{BASE}/rooms?role=SELLER").json()["rooms"]) == 1
    for i in range(4):
        tenancy.external_user_upsert(app=app, external_id=f"b{i}", name=f"Buyer {i}")
        opened = services.room_open(user=seller, buyer_id=f"b{i}", seller_id="u1")
        send(seller, opened.room, "hello")
    with CaptureQueriesContext(connection) as five:
        listed = c.get(f"{BASE}/rooms?role=SELLER").json()["rooms"]
    assert len(listed) == 5 and len(five) == len(one)
    assert [r["seller_unseen_messages"] for r in listed] == [0, 0, 0, 0, 1]
    assert listed[0]["seller_last_message"]["is_seen"] is False  # the buyer has not read it


def test_an_image_link_comes_back_as_image_and_the_same_url_as_text_stays_text(world):
    app, buyer, seller, room = world
    services.image_link_mark(user=buyer, room_id="b9.u1", client_message_id="img-1")
    send(buyer, room, "https://cdn.example/a.jpg", "img-1")
    send(seller, room, "https://cdn.example/a.jpg", "img-1")  # same id, other sender: text
    send(buyer, room, "https://cdn.example/b.jpg", "txt-1")
    data = client_for(app, "b9").get(f"{BASE}/messages?room_id=b9.u1&created_at=1").json()["data"]
    assert [m["type"] for m in data] == ["IMAGE", "TEXT", "TEXT"]
    assert data[0]["content"] == "https://cdn.example/a.jpg"
