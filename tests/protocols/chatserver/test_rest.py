"""CHAT SERVER's REST (spec §3.2) through the real authentication: the app's secret."""

import pytest
from django.test import override_settings

from accounts import tenancy
from accounts.identity import APPS, REGISTERED_TOKEN, Policy, Presented, identity_resolve

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.protocols.chatserver.urls")]


@pytest.fixture
def app(db):
    return tenancy.app_create(name="Acme")


def call(client, app, method, path, body=None, **headers):
    auth = {"HTTP_AUTHORIZATION": f"AppKey {app.public_id}:{app.secret_1}"} if app else {}
    extra = {f"HTTP_{k.upper()}": v for k, v in headers.items()}
    return getattr(client, method)(path, body, content_type="application/json", **auth, **extra)


def register(client, app, uid, token, first="Ann", last="Lee"):
    body = {"appId": app.public_id, "appUserId": uid, "firstName": first, "lastName": last, "token": token}
    return call(client, app, "post", "/user", body)


def test_routes_require_the_app_secret(client, app):
    assert call(client, None, "post", "/user", {"appId": app.public_id}).status_code == 401
    assert call(client, None, "get", "/room").status_code == 401
    wrong = client.get("/room", HTTP_AUTHORIZATION=f"AppKey {app.public_id}:nope")
    assert wrong.status_code == 401


def test_register_user_upserts_and_never_returns_the_token(client, app):
    response = register(client, app, 7, "token-seven-1")
    assert response.status_code == 200
    body = response.json()
    assert body["appUserId"] == "7" and body["firstName"] == "Ann" and body["lastName"] == "Lee"
    assert "token" not in body and "token-seven" not in response.content.decode()
    again = register(client, app, 7, "token-seven-2", first="Anna")
    assert again.json()["id"] == body["id"] and again.json()["firstName"] == "Anna"
    policy = Policy(realm=APPS, forms=(REGISTERED_TOKEN,))
    assert identity_resolve(policy=policy, presented=Presented(token="token-seven-2")).user.external_id == "7"


def test_other_app_id_in_the_body_is_app_not_found(client, app):
    other = tenancy.app_create(name="Other")
    body = {"appId": other.public_id, "appUserId": 1, "firstName": "A", "token": "tok-123456"}
    response = call(client, app, "post", "/user", body)
    assert response.status_code == 200 and response.json() == {"status": 404, "message": "App Not Found"}


def test_bad_input_is_a_proper_error_without_internals(client, app):
    response = call(client, app, "post", "/user", {"appUserId": "a.b", "firstName": "A"})
    assert response.status_code == 400 and set(response.json()) == {"code", "message", "extra"}
    response = call(client, app, "post", "/user", {"appUserId": 1})
    assert response.status_code == 400


def test_rooms_create_get_list_add_remove_delete(client, app):
    for uid in (1, 2, 3):
        register(client, app, uid, f"token-of-{uid}")
    created = call(
        client,
        app,
        "post",
        "/room",
        {"room": "usr-1-2", "appId": app.public_id, "users": [1, 2], "extra": {"k": 1}},
    )
    assert created.status_code == 200
    room = created.json()
    assert room["room"] == "usr-1-2" and room["extra"] == {"k": 1}
    assert [u["appUserId"] for u in room["users"]] == ["1", "2"]
    assert "token-of" not in created.content.decode()
    dup = call(client, app, "post", "/room", {"room": "usr-1-2", "users": [1]})
    assert dup.json() == {"status": 400, "message": "Room Already Exists"}
    missing = call(client, app, "post", "/room", {"room": "x", "users": [1, 8, 9]})
    assert missing.status_code == 200 and missing.json() == {
        "status": 400,
        "message": "Users 8,9 not registered",
    }
    assert [r["room"] for r in call(client, app, "get", "/room").json()] == ["usr-1-2"]
    assert call(client, app, "put", "/room/add", {"room": "usr-1-2", "users": [3]}).json() == {
        "message": "updated"
    }
    got = call(client, app, "get", "/room/usr-1-2").json()
    assert [u["appUserId"] for u in got["users"]] == ["1", "2", "3"]
    assert call(client, app, "put", "/room/remove", {"room": "usr-1-2", "users": [3]}).json() == {
        "message": "updated"
    }
    got = call(client, app, "get", "/room/usr-1-2").json()
    assert [u["appUserId"] for u in got["users"]] == ["1", "2"]
    check = call(client, app, "post", "/room/check_room", {"users": [1, 2]})
    assert check.status_code == 200 and check.json()["room"] == "usr-1-2"
    nope = call(client, app, "post", "/room/check_room", {"users": [1]})
    assert nope.status_code == 404 and nope.json() == {"status": 404, "message": "Room Not Found"}
    mine = call(client, app, "get", "/room/my_room", token="token-of-2").json()
    assert [r["room"] for r in mine] == ["usr-1-2"]
    assert call(client, app, "put", "/room/add", {"room": "nope", "users": [1]}).json()["status"] == 404
    assert call(client, app, "delete", "/room/usr-1-2").status_code == 200
    gone = call(client, app, "get", "/room/usr-1-2")
    assert gone.status_code == 404 and gone.json() == {"status": 404, "message": "Room Not Found"}


def test_two_apps_never_meet(client, app):
    other = tenancy.app_create(name="Other")
    register(client, app, 1, "token-a-1")
    register(client, other, 1, "token-b-1")
    call(client, app, "post", "/room", {"room": "shared-name", "users": [1]})
    assert call(client, other, "get", "/room").json() == []
    assert call(client, other, "get", "/room/shared-name").status_code == 404
    assert call(client, other, "get", "/room/my_room", token="token-a-1").json()["status"] == 404
    users = call(client, other, "get", f"/user/{other.public_id}").json()
    assert len(users) == 1 and "token" not in users[0]
    assert call(client, other, "get", f"/user/{app.public_id}").status_code == 404


@override_settings(DEBUG=False)
def test_listing_users_of_the_app(client, app):
    register(client, app, 5, "token-5-abc")
    users = call(client, app, "get", f"/user/{app.public_id}").json()
    assert [u["appUserId"] for u in users] == ["5"]
