"""Bad input on every messaging endpoint: a clear 4xx in the API's one error shape, never HTML or
a 500, and nothing stored, moved or published."""

import json

import pytest

from chatproject.core.ids import new_public_id
from messaging.models import Conversation, Membership, Message

from .conftest import direct, send_many

pytestmark = pytest.mark.django_db

WRONG_STRINGS = [12, 1.5, True, None, ["x"], {"$ne": ""}]
MALFORMED = [
    ("truncated", b'{"content": "hi'),
    ("not json", b"content=hi"),
    ("nan", b'{"seq": NaN}'),
    ("bad utf-8", b'{"content": "\xff\xfe"}'),
    ("deeply nested", b"[" * 50_000 + b"]" * 50_000),
    ("huge number", b'{"seq": ' + b"9" * 20_000 + b"}"),
]
NOT_OBJECTS = [b"[]", b'"hi"', b"12", b"null", b"true"]


@pytest.fixture
def setup(alice, bob, bus_sent, client_for):
    """Alice and Bob with three messages from Bob, and Alice's client."""
    conversation = direct(alice, bob)
    send_many(bob, conversation, 3)
    bus_sent.clear()
    return conversation, client_for(alice)


@pytest.fixture
def unchanged(setup, bus_sent):
    """Asserts, after the test, that nothing was written or published."""

    def snapshot() -> tuple:
        return (
            list(Conversation.objects.values_list("public_id", "last_seq", "last_message_at").order_by("pk")),
            list(Membership.objects.values_list("user_id", "last_read_seq", "left_at").order_by("pk")),
            list(Message.objects.values_list("public_id", "seq", "content").order_by("pk")),
        )

    before = snapshot()
    yield
    assert snapshot() == before
    assert bus_sent == []


def urls(conversation) -> dict[str, str]:
    return {
        "direct": "/api/conversations/direct/",
        "send": f"/api/conversations/{conversation.public_id}/messages/",
        "read": f"/api/conversations/{conversation.public_id}/read/",
    }


def assert_error(response, status: int, code: str = "invalid") -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


@pytest.mark.parametrize("endpoint", ["direct", "send", "read"])
@pytest.mark.parametrize(("name", "raw"), MALFORMED, ids=[name for name, _ in MALFORMED])
def test_malformed_json_is_400(setup, unchanged, endpoint, name, raw):
    conversation, client = setup
    response = client.post(urls(conversation)[endpoint], raw, content_type="application/json")
    assert_error(response, 400)


@pytest.mark.parametrize("endpoint", ["direct", "send", "read"])
@pytest.mark.parametrize("raw", NOT_OBJECTS)
def test_json_that_is_not_an_object_is_400(setup, unchanged, endpoint, raw):
    conversation, client = setup
    response = client.post(urls(conversation)[endpoint], raw, content_type="application/json")
    assert_error(response, 400)


@pytest.mark.parametrize("endpoint", ["direct", "send", "read"])
def test_form_encoded_body_is_415(setup, unchanged, endpoint):
    conversation, client = setup
    response = client.post(urls(conversation)[endpoint], {"content": "hi", "user_id": "x", "seq": "1"})
    assert_error(response, 415)


@pytest.mark.parametrize("endpoint", ["direct", "send", "read"])
def test_oversized_body_is_413(setup, unchanged, endpoint, settings):
    conversation, client = setup
    raw = json.dumps({"content": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}).encode()
    response = client.post(urls(conversation)[endpoint], raw, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        ("direct", {"user_id": "x", "role": "admin"}, "role"),
        ("send", {"content": "hi", "sender_id": "x"}, "sender_id"),
        ("send", {"content": "hi", "conversation_id": "x"}, "conversation_id"),
        ("read", {"seq": 1, "user_id": "x"}, "user_id"),
    ],
)
def test_unknown_fields_are_400(setup, unchanged, endpoint, body, field):
    conversation, client = setup
    response = client.post(urls(conversation)[endpoint], body, format="json")
    assert field in assert_error(response, 400)["extra"]["fields"]


@pytest.mark.parametrize("endpoint", ["direct", "send"])
def test_missing_required_field_is_400(setup, unchanged, endpoint):
    conversation, client = setup
    assert_error(client.post(urls(conversation)[endpoint], {}, format="json"), 400)


@pytest.mark.parametrize("value", WRONG_STRINGS, ids=repr)
def test_direct_user_id_of_wrong_type_is_400(setup, unchanged, value):
    conversation, client = setup
    response = client.post("/api/conversations/direct/", {"user_id": value}, format="json")
    assert_error(response, 400)


@pytest.mark.parametrize("value", ["", "x" * 65], ids=["empty", "too-long"])
def test_direct_user_id_of_wrong_length_is_400(setup, unchanged, value):
    conversation, client = setup
    assert_error(client.post("/api/conversations/direct/", {"user_id": value}, format="json"), 400)


@pytest.mark.parametrize("value", WRONG_STRINGS, ids=repr)
def test_message_content_of_wrong_type_is_400(setup, unchanged, value):
    conversation, client = setup
    assert_error(client.post(urls(conversation)["send"], {"content": value}, format="json"), 400)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"content": ""}',
        b'{"content": "   "}',
        b'{"content": "\\n\\t"}',
        b'{"content": "a\\u0000b"}',
        b'{"content": "\\ud800"}',
    ],
    ids=["empty", "spaces", "whitespace", "nul", "lone-surrogate"],
)
def test_empty_or_unstorable_content_is_400(setup, unchanged, raw):
    conversation, client = setup
    response = client.post(urls(conversation)["send"], raw, content_type="application/json")
    assert_error(response, 400)


def test_content_over_the_maximum_length_is_400(setup, unchanged, settings):
    conversation, client = setup
    content = "x" * (settings.CHAT["MAX_MESSAGE_LENGTH"] + 1)
    response = client.post(urls(conversation)["send"], {"content": content}, format="json")
    assert assert_error(response, 400)["extra"]["field"] == "content"


@pytest.mark.parametrize("value", [12, True, ["c"], {"c": 1}, "", "x" * 65], ids=repr)
def test_client_message_id_of_wrong_type_or_length_is_400(setup, unchanged, value):
    conversation, client = setup
    response = client.post(
        urls(conversation)["send"], {"content": "hi", "client_message_id": value}, format="json"
    )
    assert_error(response, 400)


@pytest.mark.parametrize("value", ["2", 1.5, 2.0, True, False, [1], {"n": 1}, -1, 2**63], ids=repr)
def test_read_seq_that_is_not_a_non_negative_integer_is_400(setup, unchanged, value):
    conversation, client = setup
    assert_error(client.post(urls(conversation)["read"], {"seq": value}, format="json"), 400)


@pytest.mark.parametrize(
    "query",
    [
        "before=-1",
        "before=abc",
        "before=1.5",
        "before=",
        "before=%201",
        "before=%C2%B2",
        "before=99999999999999999999",
        "before=9223372036854775808",
        "after=-1",
        "after=x",
        "limit=0",
        "limit=-3",
        "limit=1e3",
        "limit=true",
    ],
)
def test_bad_history_query_parameters_are_400(setup, unchanged, query):
    conversation, client = setup
    response = client.get(f"/api/conversations/{conversation.public_id}/messages/?{query}")
    assert_error(response, 400)


def test_largest_seq_in_history_query_is_accepted(setup, unchanged):
    conversation, client = setup
    response = client.get(f"/api/conversations/{conversation.public_id}/messages/?before=9223372036854775807")
    assert response.status_code == 200
    assert [m["seq"] for m in response.json()["results"]] == [3, 2, 1]


@pytest.mark.parametrize(
    "conversation_id",
    ["nope", "A" * 24, "0" * 23, "0" * 25, new_public_id(), "direct", "%20", "12"],
)
@pytest.mark.parametrize("endpoint", ["history", "send", "read"])
def test_bad_or_unknown_conversation_ids_are_404(setup, unchanged, conversation_id, endpoint):
    _conversation, client = setup
    if endpoint == "history":
        response = client.get(f"/api/conversations/{conversation_id}/messages/")
    elif endpoint == "send":
        response = client.post(
            f"/api/conversations/{conversation_id}/messages/", {"content": "hi"}, format="json"
        )
    else:
        response = client.post(f"/api/conversations/{conversation_id}/read/", {}, format="json")
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "endpoint"),
    [("delete", "send"), ("put", "send"), ("get", "read"), ("get", "direct"), ("delete", "direct")],
)
def test_wrong_method_is_405(setup, unchanged, method, endpoint):
    conversation, client = setup
    assert_error(getattr(client, method)(urls(conversation)[endpoint]), 405)


def test_wrong_method_on_the_list_is_405(setup, unchanged):
    _conversation, client = setup
    assert_error(client.post("/api/conversations/", {}, format="json"), 405)
