"""CHAT SERVER's dashboard (spec §2, §3.2 auth and app): dashboard users are first-party accounts
that own apps; staff are the "admin" scope. Through the real login, the real JWT and the real
app services; the live part closes a socket of a deleted app's user and runs the README's whole
integration order from the dashboard login."""

import asyncio
import base64
import json
import time

import jwt
import pytest
from django.core.cache import cache

from accounts.models import App, User
from tests.protocols.chatserver.test_live import Client, refused_with, rest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.protocols.chatserver.urls")]

SECRET = "dashboard-test-secret-0123456789abcdef"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def dashboard_secret(settings):
    settings.CHAT = {**settings.CHAT, "DASHBOARD_JWT_SECRET": SECRET, "DASHBOARD_JWT_SECONDS": 3600}
    cache.clear()


def person(email: str, *, staff: bool = False, verified: bool = True) -> User:
    return User.objects.create_user(
        email, PASSWORD, display_name="Ann Lee", email_verified=verified, is_staff=staff
    )


def post(client, path, body, token=None, **extra):
    auth = {"HTTP_AUTHORIZATION": token} if token else {}
    return client.post(path, json.dumps(body), content_type="application/json", **auth, **extra)


def login(client, email, password=PASSWORD):
    return post(client, "/auth/login", {"email": email, "password": password})


@pytest.fixture
def admin(db):
    return person("admin@example.com", staff=True)


@pytest.fixture
def admin_token(client, admin):
    return login(client, admin.email).json()["token"]


@pytest.fixture
def owner_token(client):
    person("owner@example.com")
    return login(client, "owner@example.com").json()["token"]


# --- login ---------------------------------------------------------------------------------------


def test_login_answers_the_original_shape_with_a_token_without_password_hash(client, admin):
    response = login(client, "ADMIN@example.com")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "firstName", "lastName", "email"}
    assert (body["firstName"], body["lastName"], body["email"]) == ("Ann", "Lee", "admin@example.com")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert set(claims) == {"sub", "scopes", "iat", "exp"}
    assert claims["sub"] == admin.public_id and claims["scopes"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 3600
    assert admin.password not in body["token"] and "pbkdf2" not in json.dumps(claims)


def test_login_token_lives_as_configured_and_a_plain_user_gets_scope_user(client, settings):
    settings.CHAT = {**settings.CHAT, "DASHBOARD_JWT_SECONDS": 120}
    person("u@example.com")
    claims = jwt.decode(login(client, "u@example.com").json()["token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120 and claims["scopes"] == ["user"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "admin@example.com", "password": "wrong password"},
        {"email": "nobody@example.com", "password": PASSWORD},
        {"email": "admin@example.com", "password": 12345},
        {"email": ["admin@example.com"], "password": PASSWORD},
    ],
)
def test_bad_credentials_are_invalid_login(client, admin, body):
    response = post(client, "/auth/login", body)
    assert response.status_code == 401
    assert response.json() == {"name": "InvalidLogin", "message": "Login failed"}


def test_unverified_deactivated_and_external_accounts_cannot_log_in(client):
    person("new@example.com", verified=False)
    gone = person("gone@example.com")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    assert login(client, "new@example.com").status_code == 401
    assert login(client, "gone@example.com").status_code == 401


def test_repeated_failures_back_off_per_account(client, admin, settings):
    settings.CHAT = {**settings.CHAT, "LOGIN_FAILURES_FREE": 2, "LOGIN_BACKOFF_MAX_SECONDS": 60}
    for _ in range(2):  # the second one starts the wait
        assert login(client, admin.email, "nope").status_code == 401
    throttled = login(client, admin.email)  # even the right password waits
    assert throttled.status_code == 429 and throttled.json()["code"] == "throttled"


def test_without_a_secret_in_production_the_dashboard_is_not_served(client, admin, settings, caplog):
    settings.CHAT = {**settings.CHAT, "DASHBOARD_JWT_SECRET": ""}
    settings.DEBUG = False
    assert login(client, admin.email).status_code == 503
    assert client.get("/auth/verify", HTTP_TOKEN="x").status_code == 503
    assert client.get("/app", HTTP_AUTHORIZATION="x").status_code == 503
    assert "CHAT_DASHBOARD_JWT_SECRET is not set" in caplog.text


def test_in_debug_a_secret_is_derived_from_secret_key(client, admin, settings):
    settings.CHAT = {**settings.CHAT, "DASHBOARD_JWT_SECRET": ""}
    settings.DEBUG = True
    token = login(client, admin.email).json()["token"]
    assert client.get("/auth/verify", HTTP_TOKEN=token).json() is True
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])


# --- verify and refused tokens ---------------------------------------------------------------------


def forged(admin, **changes):
    now = int(time.time())
    claims = {"sub": admin.public_id, "scopes": ["admin"], "iat": now, "exp": now + 60, **changes}
    return claims


def test_verify_is_true_only_for_a_valid_dashboard_token(client, admin_token, admin):
    assert client.get("/auth/verify", HTTP_TOKEN=admin_token).json() is True
    assert client.get("/auth/verify", HTTP_TOKEN="abcdefg").json() is False
    assert client.get("/auth/verify").json() is False
    expired = jwt.encode(forged(admin, iat=1, exp=2), SECRET, algorithm="HS256")
    assert client.get("/auth/verify", HTTP_TOKEN=expired).json() is False


def _alg_none(claims) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize("kind", ["expired", "other secret", "alg none", "no exp", "garbage"])
def test_expired_forged_and_unsigned_tokens_are_refused(client, admin, kind):
    claims = forged(admin)
    token = {
        "expired": lambda: jwt.encode(forged(admin, iat=1, exp=2), SECRET, algorithm="HS256"),
        "other secret": lambda: jwt.encode(claims, "not-the-secret-but-long-enough-0123", algorithm="HS256"),
        "alg none": lambda: _alg_none(claims),
        "no exp": lambda: jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256"
        ),
        "garbage": lambda: "not.a.jwt",
    }[kind]()
    assert client.get("/auth/verify", HTTP_TOKEN=token).json() is False
    assert client.get("/app", HTTP_AUTHORIZATION=token).status_code == 401
    body = {
        "firstName": "A",
        "middleName": "",
        "lastName": "B",
        "email": "x@example.com",
        "password": PASSWORD,
    }
    assert post(client, "/auth/register", body, token=token).status_code == 401
    assert not User.objects.filter(email="x@example.com").exists()


def test_a_deactivated_users_token_stops_working(client, owner_token):
    User.objects.filter(email="owner@example.com").update(is_active=False)
    assert client.get("/auth/verify", HTTP_TOKEN=owner_token).json() is False
    assert client.get("/app", HTTP_AUTHORIZATION=owner_token).status_code == 401


# --- register ----------------------------------------------------------------------------------------

NEW = {
    "firstName": "Bo",
    "middleName": "J",
    "lastName": "Kim",
    "email": "Bo@Example.com",
    "password": PASSWORD,
}


def test_admin_registers_a_dashboard_user_who_can_then_log_in(client, admin_token):
    response = post(client, "/auth/register", NEW, token=admin_token)
    assert response.status_code == 200
    body = response.json()
    assert (body["firstName"], body["lastName"], body["email"]) == ("Bo", "Kim", "bo@example.com")
    assert jwt.decode(body["token"], SECRET, algorithms=["HS256"])["scopes"] == ["user"]
    user = User.objects.get(email="bo@example.com")
    assert user.display_name == "Bo J Kim" and user.email_verified and not user.is_staff
    assert user.check_password(PASSWORD) and PASSWORD not in user.password  # the product's hasher
    assert login(client, "bo@example.com").status_code == 200


def test_register_needs_an_admin_token(client, owner_token):
    assert post(client, "/auth/register", NEW).status_code == 401
    assert post(client, "/auth/register", NEW, token=owner_token).status_code == 403
    assert not User.objects.filter(email="bo@example.com").exists()


def test_a_demoted_admins_token_no_longer_registers(client, admin, admin_token):
    User.objects.filter(pk=admin.pk).update(is_staff=False)
    assert post(client, "/auth/register", NEW, token=admin_token).status_code == 403


def test_register_an_existing_email_is_the_originals_answer(client, admin_token):
    person("bo@example.com")
    response = post(client, "/auth/register", NEW, token=admin_token)
    assert response.status_code == 200
    assert response.json() == {"status": 400, "message": "ChatUser Already Exists"}


@pytest.mark.parametrize(
    "change",
    [
        {"firstName": ""},
        {"firstName": 7},
        {"lastName": None},
        {"middleName": ["x"]},
        {"firstName": "x" * 51},
        {"email": "not-an-email"},
        {"email": 5},
        {"email": "a" * 250 + "@example.com"},
        {"password": "short"},
        {"password": "password"},
        {"password": "x" * 200},
        {"password": None},
        {"extra": 1},
    ],
)
def test_bad_register_input_is_a_clear_400_and_stores_nothing(client, admin_token, change):
    before = User.objects.count()
    response = post(client, "/auth/register", {**NEW, **change}, token=admin_token)
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"code", "message", "extra"} and response.json()["message"]
    assert User.objects.count() == before


def test_the_token_is_read_from_body_then_query_then_raw_header(client, admin_token):
    assert post(client, "/auth/register", {**NEW, "token": admin_token}).status_code == 200
    other = {**NEW, "email": "q@example.com"}
    assert post(client, f"/auth/register?token={admin_token}", other).status_code == 200
    bearer = {**NEW, "email": "b@example.com"}
    assert post(client, "/auth/register", bearer, token=f"Bearer {admin_token}").status_code == 200


# --- apps ------------------------------------------------------------------------------------------


def test_create_app_owned_by_the_caller_with_its_secret_shown_once(client, owner_token):
    response = post(client, "/app", {"name": "Shop"}, token=owner_token)
    assert response.status_code == 200
    body = response.json()
    app = App.objects.get(public_id=body["applicationId"])
    assert body["id"] == app.public_id and body["name"] == "Shop" and body["secret"] == app.secret_1
    assert app.owner.email == "owner@example.com" and app.secret_1 != app.secret_2
    listed = client.get("/app", HTTP_AUTHORIZATION=owner_token).json()
    assert [a["applicationId"] for a in listed] == [app.public_id]
    assert "secret" not in json.dumps(listed) and app.secret_1 not in json.dumps(listed)


@pytest.mark.parametrize(
    "body", [{"name": "Shop", "verifyUrl": "https://x"}, {"name": ""}, {"name": 5}, {}, []]
)
def test_create_app_refuses_extra_keys_and_bad_names_with_a_400(client, owner_token, body):
    response = post(client, "/app", body, token=owner_token)
    assert response.status_code == 400 and set(response.json()) == {"code", "message", "extra"}
    assert not App.objects.exists()


def test_app_routes_need_a_dashboard_token(client):
    assert client.get("/app").status_code == 401
    assert post(client, "/app", {"name": "Shop"}).status_code == 401
    assert client.delete("/app/abc").status_code == 401


def test_list_and_delete_only_ones_own_apps(client, owner_token, admin_token):
    mine = post(client, "/app", {"name": "Mine"}, token=owner_token).json()
    theirs = post(client, "/app", {"name": "Theirs"}, token=admin_token).json()
    assert [a["id"] for a in client.get("/app", HTTP_AUTHORIZATION=owner_token).json()] == [mine["id"]]
    assert [a["id"] for a in client.get("/app", HTTP_AUTHORIZATION=admin_token).json()] == [theirs["id"]]
    foreign = client.delete(f"/app/{theirs['id']}", HTTP_AUTHORIZATION=owner_token)
    assert foreign.status_code == 200 and foreign.json() == {"status": 404, "message": "App Not Found"}
    assert App.objects.get(public_id=theirs["id"]).is_active
    missing = client.delete("/app/000000000000000000000000", HTTP_AUTHORIZATION=owner_token)
    assert missing.json() == {"status": 404, "message": "App Not Found"}
    deleted = client.delete(f"/app/{mine['id']}", HTTP_AUTHORIZATION=owner_token)
    assert deleted.status_code == 200 and deleted.json()["id"] == mine["id"] and deleted.json()["deletedAt"]
    app = App.objects.get(public_id=mine["id"])
    assert not app.is_active and app.tokens_revoked_before is not None
    assert client.get("/app", HTTP_AUTHORIZATION=owner_token).json() == []
    again = client.delete(f"/app/{mine['id']}", HTTP_AUTHORIZATION=owner_token)
    assert again.json() == {"status": 404, "message": "App Not Found"}


def test_an_admin_may_delete_any_app(client, owner_token, admin_token):
    mine = post(client, "/app", {"name": "Mine"}, token=owner_token).json()
    assert client.delete(f"/app/{mine['id']}", HTTP_AUTHORIZATION=admin_token).json()["id"] == mine["id"]
    assert not App.objects.get(public_id=mine["id"]).is_active


def test_a_deleted_apps_secret_no_longer_opens_user_and_room(client, owner_token):
    app = post(client, "/app", {"name": "Shop"}, token=owner_token).json()
    key = {"HTTP_AUTHORIZATION": f"AppKey {app['id']}:{app['secret']}"}
    assert client.get("/room", **key).status_code == 200
    client.delete(f"/app/{app['id']}", HTTP_AUTHORIZATION=owner_token)
    assert client.get("/room", **key).status_code == 401


# --- live ----------------------------------------------------------------------------------------


def dash(server, method: str, path: str, body: dict | None = None, token: str | None = None):
    """A dashboard call on the live server: `rest` with the dashboard token as Authorization."""
    return rest(server, None, method, path, body, Authorization=token or "")


@pytest.mark.django_db(transaction=True)
async def test_readme_order_from_the_dashboard_login_and_deleting_the_app_closes_its_sockets(server):
    await asyncio.to_thread(person, "tenant@example.com")
    credentials = {"email": "tenant@example.com", "password": PASSWORD}
    status, session = await asyncio.to_thread(dash, server, "POST", "/auth/login", credentials)
    assert status == 200, session
    status, made = await asyncio.to_thread(dash, server, "POST", "/app", {"name": "Shop"}, session["token"])
    assert status == 200, made
    app = await asyncio.to_thread(App.objects.get, public_id=made["applicationId"])
    assert made["secret"] == app.secret_1
    for uid in (1, 2):
        body = {
            "appId": app.public_id,
            "appUserId": uid,
            "firstName": "U",
            "lastName": str(uid),
            "token": f"tok-{uid}-123456",
        }
        assert (await asyncio.to_thread(rest, server, app, "POST", "/user", body))[0] == 200
    room = {"room": "usr-1-2", "appId": app.public_id, "users": [1, 2]}
    assert (await asyncio.to_thread(rest, server, app, "POST", "/room", room))[0] == 200
    one = await Client().connect(server, "tok-1-123456")
    two = await Client().connect(server, "tok-2-123456")
    try:
        for client in (one, two):
            await client.emit("join", "usr-1-2")
            assert await client.next("info") == "You have joined the room"
        await one.emit("send_message", "hello")
        assert base64.b64decode((await two.next("message"))["message"]).decode() == "hello"
        status, deleted = await asyncio.to_thread(
            dash, server, "DELETE", f"/app/{app.public_id}", None, session["token"]
        )
        assert status == 200 and deleted["id"] == app.public_id and deleted["deletedAt"]
        await asyncio.wait_for(one.disconnected.wait(), 3)
        await asyncio.wait_for(two.disconnected.wait(), 3)
        assert await refused_with(server, "tok-1-123456") == {"message": "token key mismatch"}
        assert (await asyncio.to_thread(rest, server, app, "GET", "/room"))[0] == 401
    finally:
        await one.close()
        await two.close()
