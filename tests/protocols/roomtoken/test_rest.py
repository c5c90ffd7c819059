"""REST history, `GET /v1/chat/` (spec §5, §6): the original's validation messages and 400
body, pages oldest first, the caller's credential, and membership (spec §8.3)."""

import pytest

from accounts import tenancy
from gateway.protocols.roomtoken.store.services import CUSTOMER, VENDOR, room_join, room_leave
from messaging import services as msg_services
from tests.tenants.helpers import sign

pytestmark = pytest.mark.django_db

BASE = {"roomToken": "tok", "namespace": "customer"}


@pytest.fixture
def chat(market):
    """tok: c1 asked a1, a1 accepted; 12 messages, alternating."""
    _app, customer, artisan, _stranger = market
    room = room_join(user=customer.user, namespace="customer", token="tok", role=CUSTOMER, other_id="a1").room
    room_join(user=artisan.user, namespace="customer", token="tok", role=VENDOR, other_id="c1")
    for i in range(1, 13):
        who = customer if i % 2 else artisan
        msg_services.message_send(user=who.user, conversation_id=room.conversation.public_id, content=f"m{i}")
    return room


def get(client, query: dict, path="/v1/chat/", **headers):
    response = client.get(path, query, **headers)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"namespace": "customer"}, '"roomToken" is required'),
        ({"roomToken": "", "namespace": "customer"}, '"roomToken" is not allowed to be empty'),
        ({"roomToken": "tok"}, '"namespace" is required'),
        (BASE | {"namespace": "vendors"}, '"namespace" must be one of [customer, artisans]'),
        (BASE | {"limit": "21"}, '"limit" must be less than or equal to 20'),
        (BASE | {"limit": "4"}, '"limit" must be larger than or equal to 5'),
        (BASE | {"limit": "five"}, '"limit" must be a number'),
        (BASE | {"limit": "5.5"}, '"limit" must be an integer'),
        (BASE | {"limit": "nan"}, '"limit" must be a number'),
        (BASE | {"page": "0"}, '"page" must be larger than or equal to 1'),
        (BASE | {"page": "-1"}, '"page" must be larger than or equal to 1'),
        (BASE | {"sort": "desc"}, '"sort" is not allowed'),
        (BASE | {"roomToken": ["a", "b"]}, '"roomToken" must be a string'),
        (BASE | {"namespace": ""}, '"namespace" is not allowed to be empty'),
        # Numbers as JavaScript reads them (Python's float() takes all of these).
        (BASE | {"limit": "1_0"}, '"limit" must be a number'),
        (BASE | {"limit": "\uff15"}, '"limit" must be a number'),  # a fullwidth 5
        (BASE | {"page": "inf"}, '"page" must be a number'),
        (BASE | {"page": "1e400"}, '"page" must be a number'),
        (BASE | {"limit": " 1e1 "}, None),
        # Joi's order: the schema's keys first, then unknown keys; a repeated key is an array.
        ({"limit": ["5", "6"], "namespace": "customer"}, '"roomToken" is required'),
        (BASE | {"limit": ["5", "6"], "sort": "x"}, '"limit" must be a number'),
        (BASE | {"sort": ["a", "b"]}, '"sort" is not allowed'),
        (BASE | {"page": "0", "sort": "x"}, '"page" must be larger than or equal to 1'),
    ],
)
def test_bad_queries_get_the_originals_400(client, chat, market, query, message):
    _app, customer, _artisan, _stranger = market
    status, body = get(client, query | {"userId": customer.handle})
    if message is None:
        assert (status, body["message"]) == (200, "chat")
        return
    assert (status, body) == (400, {"code": 400, "message": message, "success": False})


def test_pages_are_oldest_first_with_a_default_of_20(client, chat, market):
    _app, customer, _artisan, _stranger = market
    me = {"userId": customer.handle}
    pages = [get(client, BASE | me | {"limit": "5", "page": str(p)})[1]["data"] for p in (1, 2, 3, 4)]
    assert [[m["message"] for m in page] for page in pages] == [
        ["m1", "m2", "m3", "m4", "m5"],
        ["m6", "m7", "m8", "m9", "m10"],
        ["m11", "m12"],
        [],
    ]
    status, body = get(client, BASE | me, path="/v1/chat")
    assert status == 200 and body["message"] == "chat" and len(body["data"]) == 12
    first, second = body["data"][:2]
    assert list(first) == ["_id", "message", "message_type", "senderId", "receiverId", "room_id", "dt"]
    assert (first["senderId"], first["receiverId"]) == (customer.handle, "a1")
    assert (second["senderId"], second["receiverId"]) == ("a1", customer.handle)
    assert first["room_id"] == chat.public_id and first["message_type"] == "text"
    assert get(client, BASE | me | {"page": "99999999999999999999"}) == (200, {"message": "chat", "data": []})


def test_credentials_a_bearer_handle_or_a_token(client, chat, market):
    app, _customer, artisan, _stranger = market
    status, body = get(client, BASE, HTTP_AUTHORIZATION=f"Bearer {artisan.handle}")
    assert status == 200 and body["data"][0]["receiverId"] == artisan.handle
    status, body = get(client, BASE | {"token": sign(app, "a1")})
    assert status == 200 and body["data"][0]["receiverId"] == "a1"
    status, body = get(client, BASE, HTTP_AUTHORIZATION=f"Bearer {sign(app, 'a1')}")
    assert status == 200 and len(body["data"]) == 12


def test_missing_bad_and_revoked_credentials_are_401(client, chat, market):
    app, customer, _artisan, _stranger = market
    assert get(client, BASE) == (401, {"code": 401, "message": "User Id is required", "success": False})
    odd = ({"userId": "\x00"}, {"userId": "\ufffe"}, {"userId": "x" * 5000}, {"token": "." * 3000})
    for query in ({"userId": "c1"}, {"userId": "x" * 30}, {"token": "a.b.c"}, {"customerID": "nope"}, *odd):
        assert get(client, BASE | query) == (
            401,
            {"code": 401, "message": "Invalid User Id", "success": False},
        )
    tenancy.id_handle_revoke(app=app, handle_id=customer.handle_id)
    assert get(client, BASE | {"vendorID": customer.handle})[0] == 401


def test_strangers_other_namespaces_and_pending_recipients_read_nothing(client, chat, market):
    _app, customer, artisan, stranger = market
    assert get(client, BASE | {"userId": stranger.handle}) == (200, {"message": "chat", "data": []})
    assert get(client, BASE | {"userId": customer.handle, "namespace": "artisans"})[1]["data"] == []
    room_join(user=customer.user, namespace="customer", token="pending", role=CUSTOMER, other_id="a1")
    pending = BASE | {"roomToken": "pending"}
    room = room_join(
        user=customer.user, namespace="customer", token="pending", role=CUSTOMER, other_id="a1"
    ).room
    msg_services.message_send(
        user=customer.user, conversation_id=room.conversation.public_id, content="hello?"
    )
    assert get(client, pending | {"userId": artisan.handle})[1]["data"] == []  # not accepted yet
    assert [m["message"] for m in get(client, pending | {"userId": customer.handle})[1]["data"]] == ["hello?"]


def test_only_get_and_head(client, chat, market):
    _app, customer, _artisan, _stranger = market
    assert client.post("/v1/chat/?" + "&".join(f"{k}={v}" for k, v in BASE.items())).status_code == 405


def test_a_party_who_left_reads_nothing_until_they_join_again(client, chat, market):
    _app, customer, artisan, _stranger = market
    room_leave(user=artisan.user, namespace="customer", token="tok")
    msg_services.message_send(user=customer.user, conversation_id=chat.conversation.public_id, content="m13")
    assert get(client, BASE | {"userId": artisan.handle}) == (200, {"message": "chat", "data": []})
    assert len(get(client, BASE | {"userId": customer.handle})[1]["data"]) == 13
    room_join(user=artisan.user, namespace="customer", token="tok", role=VENDOR, other_id="c1")
    data = get(client, BASE | {"userId": artisan.handle})[1]["data"]
    assert len(data) == 13 and data[-1]["message"] == "m13"


def test_a_page_costs_the_same_queries_however_many_messages(client, chat, market):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _app, customer, _artisan, _stranger = market
    me = BASE | {"userId": customer.handle}
    counts = []
    for limit in ("5", "20"):
        with CaptureQueriesContext(connection) as queries:
            status, body = get(client, me | {"limit": limit})
        assert status == 200 and len(body["data"]) == min(int(limit), 12)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_a_declined_requester_reads_nothing_and_the_recipient_reads_once_accepted(client, market):
    """Declining ends the requester's membership: the room is gone for them (list-room, join,
    history), as for a party who left; the recipient reads it once they accept after all."""
    from messaging.models import ChatRequest

    _app, customer, artisan, _stranger = market
    room = room_join(user=customer.user, namespace="customer", token="tok", role=CUSTOMER, other_id="a1").room
    msg_services.message_send(user=customer.user, conversation_id=room.conversation.public_id, content="hi?")
    request = ChatRequest.objects.get(conversation=room.conversation)
    msg_services.chat_request_decline(user=artisan.user, request_id=request.public_id)
    assert get(client, BASE | {"userId": customer.handle}) == (200, {"message": "chat", "data": []})
    assert get(client, BASE | {"userId": artisan.handle})[1]["data"] == []
    room_join(user=artisan.user, namespace="customer", token="tok", role=VENDOR, other_id="c1")
    for who in (customer, artisan):
        assert [m["message"] for m in get(client, BASE | {"userId": who.handle})[1]["data"]] == ["hi?"]
