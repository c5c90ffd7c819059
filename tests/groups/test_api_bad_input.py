"""Bad input on every groups endpoint with a body: a clear 4xx in the API's one error shape, never
HTML or a 500, and nothing stored or published. The caller is the group's owner, so nothing but
the input can be the reason for the refusal."""

import json

import pytest

from groups.models import Group
from messaging.models import Conversation, Membership, Message

pytestmark = pytest.mark.django_db

WRONG_STRINGS = [12, 1.5, True, None, ["x"], {"$ne": ""}]
MALFORMED = [
    ("truncated", b'{"name": "hi'),
    ("not json", b"name=hi"),
    ("nan", b'{"name": NaN}'),
    ("bad utf-8", b'{"name": "\xff\xfe"}'),
    ("deeply nested", b"[" * 50_000 + b"]" * 50_000),
    ("huge number", b'{"user_id": ' + b"9" * 20_000 + b"}"),
]
NOT_OBJECTS = [b"[]", b'"hi"', b"12", b"null", b"true"]
# method, path tail (None: /api/groups/), a valid body
ENDPOINTS = {
    "create": ("post", None, {"name": "T"}),
    "update": ("patch", "", {"name": "T"}),
    "add member": ("post", "members/", {"user_id": "DAVE"}),
    "grant admin": ("post", "admins/", {"user_id": "BOB"}),
    "hand over": ("post", "admins/handover/", {"user_id": "BOB"}),
    "leave": ("post", "leave/", {}),
}
WITH_USER_ID = ["add member", "grant admin", "hand over"]


@pytest.fixture
def setup(team, alice, client_for, bus_sent):
    bus_sent.clear()
    return team, client_for(alice)


@pytest.fixture
def unchanged(setup, bus_sent):
    """Asserts, after the test, that nothing was written or published."""

    def snapshot() -> tuple:
        return (
            list(Conversation.objects.values_list("public_id", "title", "last_seq").order_by("pk")),
            list(Group.objects.values_list("description", "avatar_url").order_by("pk")),
            list(Membership.objects.values_list("user_id", "role", "left_at").order_by("pk")),
            list(Message.objects.values_list("seq", "content").order_by("pk")),
        )

    before = snapshot()
    yield
    assert snapshot() == before
    assert bus_sent == []


def send(client, team, endpoint: str, body, **kwargs):
    method, tail, _valid = ENDPOINTS[endpoint]
    path = "/api/groups/" if tail is None else f"/api/groups/{team.public_id}/{tail}"
    return getattr(client, method)(path, body, **kwargs)


def send_json(client, team, endpoint: str, body):
    return send(client, team, endpoint, body, format="json")


def send_raw(client, team, endpoint: str, raw: bytes):
    return send(client, team, endpoint, raw, content_type="application/json")


def assert_error(response, status: int, code: str = "invalid") -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize(("name", "raw"), MALFORMED, ids=[name for name, _ in MALFORMED])
def test_malformed_json_is_400(setup, unchanged, endpoint, name, raw):
    team, client = setup
    assert_error(send_raw(client, team, endpoint, raw), 400)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("raw", NOT_OBJECTS)
def test_json_that_is_not_an_object_is_400(setup, unchanged, endpoint, raw):
    team, client = setup
    assert_error(send_raw(client, team, endpoint, raw), 400)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_form_encoded_body_is_415(setup, unchanged, endpoint):
    team, client = setup
    assert_error(send(client, team, endpoint, {"name": "T", "user_id": "x"}, format="multipart"), 415)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_oversized_body_is_413(setup, unchanged, endpoint, settings):
    team, client = setup
    raw = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}).encode()
    assert_error(send_raw(client, team, endpoint, raw), 413, "payload_too_large")


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("field", ["owner", "role", "conversation_id", "members"])
def test_unknown_fields_are_400(setup, bob, dave, unchanged, endpoint, field):
    team, client = setup
    body = _valid(endpoint, bob, dave) | {field: "x"}
    assert field in assert_error(send_json(client, team, endpoint, body), 400)["extra"]["fields"]


def _valid(endpoint: str, bob, dave) -> dict:
    body = dict(ENDPOINTS[endpoint][2])
    if "user_id" in body:
        body["user_id"] = {"DAVE": dave.id, "BOB": bob.id}[body["user_id"]]
    return body


@pytest.mark.parametrize("endpoint", ["create", *WITH_USER_ID])
def test_missing_required_field_is_400(setup, unchanged, endpoint):
    team, client = setup
    body = assert_error(send_json(client, team, endpoint, {}), 400)
    assert set(body["extra"]["fields"]) == {"name" if endpoint == "create" else "user_id"}


def test_empty_update_is_400(setup, unchanged):
    team, client = setup
    assert_error(send_json(client, team, "update", {}), 400)


@pytest.mark.parametrize("endpoint", ["create", "update"])
@pytest.mark.parametrize("field", ["name", "description", "avatar_url"])
@pytest.mark.parametrize("value", WRONG_STRINGS, ids=repr)
def test_text_fields_of_wrong_type_are_400(setup, unchanged, endpoint, field, value):
    team, client = setup
    body = {"name": "T"} | {field: value}
    assert field in assert_error(send_json(client, team, endpoint, body), 400)["extra"]["fields"]


@pytest.mark.parametrize("endpoint", ["create", "update"])
@pytest.mark.parametrize("text", ["nul \x00 byte", "lone \ud800 surrogate"], ids=["nul", "surrogate"])
def test_text_that_cannot_be_stored_is_400(setup, unchanged, endpoint, text):
    team, client = setup
    raw = json.dumps({"name": text}).encode()  # json.dumps escapes both, as a client would send them
    assert "name" in assert_error(send_raw(client, team, endpoint, raw), 400)["extra"]["fields"]


@pytest.mark.parametrize(
    "value",
    ["abc", 5, True, None, {"a": "b"}, [1], [None], [["x"]], ["x" * 65]],
    ids=repr,
)
def test_member_ids_that_are_not_a_list_of_ids_are_400(setup, unchanged, value):
    team, client = setup
    body = assert_error(send_json(client, team, "create", {"name": "T", "member_ids": value}), 400)
    assert "member_ids" in body["extra"]["fields"]


@pytest.mark.parametrize("endpoint", WITH_USER_ID)
@pytest.mark.parametrize("value", [*WRONG_STRINGS, "", "x" * 65], ids=repr)
def test_user_id_of_wrong_type_or_length_is_400(setup, unchanged, endpoint, value):
    team, client = setup
    body = assert_error(send_json(client, team, endpoint, {"user_id": value}), 400)
    assert "user_id" in body["extra"]["fields"]


@pytest.mark.parametrize("endpoint", WITH_USER_ID)
def test_malformed_user_id_is_404_like_an_unknown_user(setup, unchanged, endpoint):
    team, client = setup
    assert_error(send_json(client, team, endpoint, {"user_id": "not-an-id"}), 404, "not_found")
