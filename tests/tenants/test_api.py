"""The tenant server API (/api/tenant/v1/): app-key authentication, users, handles, tokens,
revocation, conversations and system messages; bad input gets a clear error and stores nothing."""

import pytest
from rest_framework.test import APIClient

from accounts.models import IdHandle, RegisteredToken, User
from messaging.models import Conversation, Message

pytestmark = pytest.mark.django_db

BASE = "/api/tenant/v1"


def client_of(app, *, secret=None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"AppKey {app.public_id}:{secret or app.secret_1}")
    return client


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"} and body["code"] == code, body
    return body


def test_app_key_authentication(make_app, alice):
    app = make_app()
    assert client_of(app).post(f"{BASE}/users", {"id": "u1"}, format="json").status_code == 201
    assert (
        client_of(app, secret=app.secret_2).post(f"{BASE}/users", {"id": "u1"}, format="json").status_code
        == 200
    )
    for header in (
        None,
        "AppKey",
        f"AppKey {app.public_id}",
        f"AppKey {app.public_id}:wrong",
        f"AppKey {'0' * 24}:{app.secret_1}",
        f"AppKey {app.public_id}:{app.secret_1} extra",
        f"Bearer {alice.access}",  # a user's token is no app key
    ):
        client = APIClient()
        if header:
            client.credentials(HTTP_AUTHORIZATION=header)
        response = client.post(f"{BASE}/users", {"id": "u2"}, format="json")
        assert response.status_code in (401, 403)
        assert set(response.json()) == {"code", "message", "extra"}
    assert not User.objects.filter(external_id="u2").exists()


def test_no_cors_for_the_tenant_api(make_app, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://web.example"]
    app = make_app()
    response = client_of(app).post(
        f"{BASE}/users", {"id": "u1"}, format="json", HTTP_ORIGIN="https://web.example"
    )
    assert "access-control-allow-origin" not in {k.lower() for k in response.headers}
    response = APIClient().options(f"{BASE}/users", HTTP_ORIGIN="https://web.example")
    assert "access-control-allow-origin" not in {k.lower() for k in response.headers}


def test_upsert_creates_then_updates(make_app):
    app = make_app()
    client = client_of(app)
    body = {"id": "b9", "name": "Bee", "avatar_url": "https://cdn.example/b9.png"}
    created = client.post(f"{BASE}/users", body, format="json")
    assert created.status_code == 201
    assert created.json() | {"user_id": None} == {
        "id": "b9",
        "user_id": None,
        "name": "Bee",
        "avatar_url": "https://cdn.example/b9.png",
        "created": True,
    }
    updated = client.post(f"{BASE}/users", {"id": "b9", "name": "Bee Nine"}, format="json")
    assert updated.status_code == 200 and updated.json()["name"] == "Bee Nine"
    assert updated.json()["avatar_url"] == "https://cdn.example/b9.png"
    user = User.objects.get(app=app, external_id="b9")
    assert (user.email, user.has_usable_password(), user.can_chat) == (None, False, True)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"id": ""},
        {"id": "a.b"},
        {"id": "x" * 65},
        {"id": 7},
        {"id": "ok", "name": ""},
        {"id": "ok", "name": "n" * 101},
        {"id": "ok", "name": "nul\x00"},
        {"id": "ok", "avatar_url": "javascript:alert(1)"},
        ["not", "an", "object"],
    ],
)
def test_upsert_refuses_bad_input_and_stores_nothing(make_app, body):
    app = make_app()
    error(client_of(app).post(f"{BASE}/users", body, format="json"), 400, "invalid")
    assert not User.objects.filter(app=app).exists()


def test_handles_are_issued_once_and_revoked_per_app(make_app, bus_sent, django_capture_on_commit_callbacks):
    app, other = make_app(), make_app("Other")
    client = client_of(app)
    client.post(f"{BASE}/users", {"id": "u1"}, format="json")
    issued = client.post(f"{BASE}/users/u1/handles")
    assert issued.status_code == 201
    data = issued.json()
    assert set(data) == {"handle_id", "handle", "user_id", "revoked_at"} and data["user_id"] == "u1"
    handle = IdHandle.objects.get(public_id=data["handle_id"])
    assert data["handle"] not in handle.handle_hash
    error(client_of(other).delete(f"{BASE}/handles/{data['handle_id']}"), 404, "not_found")
    error(client.post(f"{BASE}/users/nobody/handles"), 404, "not_found")
    error(client_of(other).post(f"{BASE}/users/u1/handles"), 404, "not_found")  # another app's user
    with django_capture_on_commit_callbacks(execute=True):
        revoked = client.delete(f"{BASE}/handles/{data['handle_id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] and "handle" not in revoked.json()
    user = User.objects.get(app=app, external_id="u1")
    assert [e["sid"] for g, e in bus_sent if e["type"] == "session.revoked"] == [f"h:{data['handle_id']}"]
    assert [g for g, e in bus_sent if e["type"] == "session.revoked"] == [[f"u.{user.public_id}"]]


def test_registered_tokens_and_revocation(make_app, bus_sent, django_capture_on_commit_callbacks):
    app = make_app()
    client = client_of(app)
    client.post(f"{BASE}/users", {"id": "7"}, format="json")
    assert client.post(f"{BASE}/users/7/token", {"token": "seed003-token"}, format="json").status_code == 200
    error(client.post(f"{BASE}/users/7/token", {"token": "short"}, format="json"), 400, "invalid")
    client.post(f"{BASE}/users", {"id": "8"}, format="json")
    error(client.post(f"{BASE}/users/8/token", {"token": "seed003-token"}, format="json"), 409, "conflict")
    assert RegisteredToken.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        revoked = client.post(f"{BASE}/users/7/revoke-tokens")
        assert revoked.status_code == 200 and revoked.json()["revoked_before"]
        assert client.post(f"{BASE}/revoke-tokens").status_code == 200
    events = [(groups, e) for groups, e in bus_sent if e["type"] == "session.revoked"]
    user = User.objects.get(app=app, external_id="7")
    assert events[0] == ([f"u.{user.public_id}"], {**events[0][1], "user_id": user.public_id, "sid": None})
    assert events[1][0] == [f"a.{app.public_id}"] and events[1][1]["app_id"] == app.public_id


def test_conversations_and_system_messages(make_app, make_user):
    app, other = make_app(), make_app("Other")
    client = client_of(app)
    for uid in ("u1", "b9", "c3"):
        client.post(f"{BASE}/users", {"id": uid}, format="json")
    client_of(other).post(f"{BASE}/users", {"id": "x1"}, format="json")
    direct = client.post(f"{BASE}/conversations", {"kind": "direct", "members": ["u1", "b9"]}, format="json")
    assert direct.status_code == 201 and direct.json()["kind"] == "direct"
    again = client.post(f"{BASE}/conversations", {"kind": "direct", "members": ["b9", "u1"]}, format="json")
    assert again.status_code == 200 and again.json()["id"] == direct.json()["id"]
    group = client.post(
        f"{BASE}/conversations",
        {"kind": "group", "members": ["u1", "b9", "c3"], "title": "Team"},
        format="json",
    )
    assert group.status_code == 201
    conversation = Conversation.objects.get(public_id=group.json()["id"])
    assert conversation.memberships.count() == 3
    posted = client.post(
        f"{BASE}/conversations/{group.json()['id']}/system-messages", {"text": "Hello"}, format="json"
    )
    assert posted.status_code == 201
    message = Message.objects.get(public_id=posted.json()["id"])
    assert (message.kind, message.sender, message.content) == ("system", None, "Hello")
    # Another app's users, ids and conversations are not found; nothing is created.
    alice = make_user("Alice")
    count = Conversation.objects.count()
    for body in (
        {"kind": "direct", "members": ["u1", "x1"]},
        {"kind": "group", "members": ["u1", "x1"], "title": "Mixed"},
        {"kind": "direct", "members": ["u1", alice.id]},
    ):
        error(client.post(f"{BASE}/conversations", body, format="json"), 404, "not_found")
    error(
        client_of(other).post(
            f"{BASE}/conversations/{group.json()['id']}/system-messages", {"text": "x"}, format="json"
        ),
        404,
        "not_found",
    )
    for body in (
        {"kind": "nope", "members": ["u1"]},
        {"kind": "direct", "members": "u1"},
        {"kind": "direct"},
    ):
        error(client.post(f"{BASE}/conversations", body, format="json"), 400, "invalid")
    error(
        client.post(f"{BASE}/conversations", {"kind": "direct", "members": ["u1"]}, format="json"),
        400,
        "invalid",
    )
    error(
        client.post(
            f"{BASE}/conversations/{direct.json()['id']}/system-messages", {"text": ""}, format="json"
        ),
        400,
        "invalid",
    )
    assert Conversation.objects.count() == count


def test_the_tenant_api_is_in_openapi_under_its_tag(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    tagged = [
        path for path, ops in schema["paths"].items() for op in ops.values() if "tenant" in op.get("tags", [])
    ]
    assert "/api/tenant/v1/users" in tagged and "/api/tenant/v1/conversations" in tagged
    assert "appKeyAuth" in schema["components"]["securitySchemes"]


def test_the_tenant_api_is_throttled_per_app(make_app, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "tenant_api": "2/min",
        },
    }
    app, other = make_app(), make_app("Other")
    statuses = [
        client_of(app).post(f"{BASE}/users", {"id": "u1"}, format="json").status_code for _ in range(3)
    ]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert client_of(other).post(f"{BASE}/users", {"id": "u1"}, format="json").status_code == 201
    cache.clear()
