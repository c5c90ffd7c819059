"""REST: privacy settings, presence, seen-by, delivered, and the read pointer's other forms,
through the real endpoints with real Bearer tokens."""

import pytest
from django.core.management import call_command

from chatproject.core.ids import new_public_id
from gateway import presence
from tests.messaging.conftest import direct, group, read_seq, send, send_many

pytestmark = pytest.mark.django_db

SETTINGS_URL = "/api/users/me/settings"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


# --- /api/users/me/settings ----------------------------------------------------------------------


def test_settings_default_to_visible_presence_and_receipts_on(alice, client_for):
    response = client_for(alice).get(SETTINGS_URL)
    assert response.status_code == 200
    assert response.json() == {"presence_hidden": False, "read_receipts_enabled": True}


def test_patch_settings_changes_only_the_given_fields_and_reaches_the_sockets(alice, client_for, bus_sent):
    client = client_for(alice)
    response = client.patch(SETTINGS_URL, {"read_receipts_enabled": False}, format="json")
    assert response.json() == {"presence_hidden": False, "read_receipts_enabled": False}
    response = client.patch(SETTINGS_URL, {"presence_hidden": True}, format="json")
    assert response.json() == {"presence_hidden": True, "read_receipts_enabled": False}
    alice.user.refresh_from_db()
    assert (alice.user.presence_hidden, alice.user.read_receipts_enabled) == (True, False)
    assert [(groups, event["type"]) for groups, event in bus_sent] == [
        ([f"u.{alice.id}"], "user.settings_changed")
    ] * 2


@pytest.mark.parametrize(
    "body",
    [{"presence_hidden": "true"}, {"read_receipts_enabled": 1}, {"hidden": True}, {"presence_hidden": None}],
)
def test_patch_settings_refuses_anything_but_booleans_of_known_fields(alice, client_for, body):
    assert_error(client_for(alice).patch(SETTINGS_URL, body, format="json"), 400, "invalid")
    alice.user.refresh_from_db()
    assert (alice.user.presence_hidden, alice.user.read_receipts_enabled) == (False, True)


def test_settings_need_a_login(client_for):
    assert_error(client_for().get(SETTINGS_URL), 401, "not_authenticated")
    assert_error(client_for().patch(SETTINGS_URL, {}, format="json"), 401, "not_authenticated")


# --- /api/presence/ ------------------------------------------------------------------------------


@pytest.fixture
def memory_store(monkeypatch) -> presence.MemoryStore:
    store = presence.MemoryStore()
    monkeypatch.setattr(presence.tracker, "_store", store)
    return store


def test_presence_lists_people_sharing_a_chat_in_the_order_asked(
    alice, bob, carol, make_user, client_for, memory_store
):
    dave = make_user("Dave")
    direct(alice, bob)
    group(alice, carol)
    memory_store._entries[carol.id]["p/1"] = "background"
    memory_store._entries[dave.id]["p/2"] = "foreground"
    response = client_for(alice).get("/api/presence/", {"user_ids": f"{carol.id},{dave.id},{bob.id}"})
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"user_id": carol.id, "online": True, "state": "background", "last_seen": None},
            {"user_id": bob.id, "online": False, "state": "offline", "last_seen": None},
        ]
    }


def test_presence_of_a_hidden_user_is_offline_without_last_seen(alice, bob, client_for, memory_store):
    direct(alice, bob)
    memory_store._entries[bob.id]["p/1"] = "foreground"
    client_for(bob).patch(SETTINGS_URL, {"presence_hidden": True}, format="json")
    results = client_for(alice).get("/api/presence/", {"user_ids": bob.id}).json()["results"]
    assert results == [{"user_id": bob.id, "online": False, "state": "offline", "last_seen": None}]
    own = client_for(bob).get("/api/presence/", {"user_ids": bob.id}).json()["results"]
    assert own[0]["state"] == "foreground"


def test_presence_needs_user_ids(alice, client_for):
    assert_error(client_for(alice).get("/api/presence/"), 400, "invalid")
    assert client_for(alice).get("/api/presence/", {"user_ids": ""}).json() == {"results": []}


# --- receipts over REST --------------------------------------------------------------------------


def test_seen_by_over_rest(alice, bob, carol, client_for):
    conversation = group(alice, bob, carol)
    message = send(alice, conversation)
    client_for(bob).post(f"/api/conversations/{conversation.public_id}/read/", {}, format="json")
    client_for(carol).post(f"/api/conversations/{conversation.public_id}/delivered/", {}, format="json")
    url = f"/api/conversations/{conversation.public_id}/messages/{message.public_id}/seen-by/"
    response = client_for(alice).get(url)
    assert response.status_code == 200
    assert response.json() == {
        "message_id": message.public_id,
        "seq": 1,
        "seen_by": [{"id": bob.id, "display_name": "Bob"}],
        "delivered_to": [{"id": carol.id, "display_name": "Carol"}],
        "seen_count": 1,
        "delivered_count": 1,
    }


def test_seen_by_is_refused_while_ones_own_receipts_are_off(alice, bob, client_for):
    conversation = direct(alice, bob)
    message = send(alice, conversation)
    client = client_for(alice)
    client.patch(SETTINGS_URL, {"read_receipts_enabled": False}, format="json")
    url = f"/api/conversations/{conversation.public_id}/messages/{message.public_id}/seen-by/"
    assert_error(client.get(url), 403, "permission_denied")


def test_seen_by_of_an_unknown_message_or_a_foreign_chat_is_404(alice, bob, carol, client_for):
    conversation = direct(alice, bob)
    foreign = direct(bob, carol)
    message = send(bob, foreign)
    client = client_for(alice)
    assert_error(
        client.get(f"/api/conversations/{conversation.public_id}/messages/{new_public_id()}/seen-by/"),
        404,
        "not_found",
    )
    assert_error(
        client.get(f"/api/conversations/{foreign.public_id}/messages/{message.public_id}/seen-by/"),
        404,
        "not_found",
    )


def test_delivered_over_rest(alice, bob, client_for, bus_sent):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 3)
    url = f"/api/conversations/{conversation.public_id}/delivered/"
    response = client_for(alice).post(url, {"seq": 2}, format="json")
    assert response.status_code == 200
    assert response.json() == {"conversation_id": conversation.public_id, "last_delivered_seq": 2}
    assert [(groups, event["type"]) for groups, event in bus_sent] == [
        ([f"u.{bob.id}"], "conversation.delivered")
    ]
    assert_error(client_for(alice).post(url, {"seq": "3"}, format="json"), 400, "invalid")
    assert_error(client_for(alice).post(url, {"upto": 3}, format="json"), 400, "invalid")


def test_read_over_rest_accepts_message_ids_and_last_message_id(alice, bob, client_for):
    conversation = direct(alice, bob)
    messages = send_many(bob, conversation, 4)
    url = f"/api/conversations/{conversation.public_id}/read/"
    client = client_for(alice)
    body = {"message_ids": [messages[0].public_id, messages[1].public_id]}
    assert client.post(url, body, format="json").json()["last_read_seq"] == 2
    assert (
        client.post(url, {"last_message_id": messages[2].public_id}, format="json").json()["last_read_seq"]
        == 3
    )
    assert_error(client.post(url, {"last_message_id": new_public_id()}, format="json"), 404, "not_found")
    assert_error(
        client.post(url, {"seq": 4, "last_message_id": messages[3].public_id}, format="json"), 400, "invalid"
    )
    assert_error(client.post(url, {"message_ids": [1]}, format="json"), 400, "invalid")
    assert read_seq(alice, conversation) == 3


def test_schema_of_the_new_endpoints_is_valid_and_without_warnings(tmp_path):
    # Raises SystemExit on any warning or validation error.
    call_command(
        "spectacular",
        "--urlconf",
        "tests.presence.schema_urls",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
    )
    schema = (tmp_path / "schema.yaml").read_text()
    for path in ("/api/presence/", "/api/users/me/settings", "/seen-by/", "/delivered/"):
        assert path in schema
