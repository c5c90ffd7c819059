"""Bad input on every auth endpoint: a clear 4xx in the endpoint's own shape, never HTML or a
500, and nothing stored or mailed."""

import json

import pytest
from django.core import mail
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import EmailVerification, LoginSession, User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

NATIVE = {
    "signup": ("/api/auth/signup", {"email": "new@example.com", "password": PASSWORD, "display_name": "New"}),
    "verify": ("/api/auth/verify", {"email": "alice@example.com", "code": "123456"}),
    "resend": ("/api/auth/resend", {"email": "alice@example.com"}),
    "login": ("/api/auth/login", {"email": "alice@example.com", "password": PASSWORD}),
    "refresh": ("/api/auth/refresh", {"refresh": "x" * 40}),
    "logout": ("/api/auth/logout", {"refresh": "x" * 40}),
}

EXPRESSCHAT = {
    "signup": (
        "/signup",
        {"name": "New", "email": "new@example.com", "password": PASSWORD},
        (404, b'{"success":-1,"message":"Enter All credentials properly"}'),
    ),
    "login": (
        "/login",
        {"email": "alice@example.com", "password": PASSWORD},
        (404, b'{"success":-1,"msg":"Bad request"}'),
    ),
    "resend": (
        "/resend",
        {"email": "alice@example.com"},
        (404, b'{"message":"Email Not Specified","success":-1}'),
    ),
    "update-access-token": (
        "/update-access-token",
        {"acessToken": "x" * 40},
        (404, b'{"message":"No Access Token Specified"}'),
    ),
}

WRONG_TYPES = [12, 1.5, True, None, ["x"], {"$ne": ""}, {"$regex": ".*"}]


def _malformed_bodies() -> list[tuple[str, bytes]]:
    return [
        ("truncated", b'{"email": "alice@'),
        ("not json", b"email=alice"),
        ("nan", b'{"email": NaN}'),
        ("bad utf-8", b'{"email": "\xff\xfe"}'),
        ("deeply nested", b"[" * 50_000 + b"]" * 50_000),
        ("huge number", b'{"email": ' + b"9" * 20_000 + b"}"),
    ]


MALFORMED = _malformed_bodies()


def oversized(settings) -> bytes:
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    return json.dumps({"email": "alice@example.com", "padding": padding}).encode()


@pytest.fixture
def alice_logged_in(api):
    User.objects.create_user("alice@example.com", PASSWORD, display_name="Alice", email_verified=True)
    access = api.post("/api/auth/login", NATIVE["login"][1], format="json").json()["access"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return api


@pytest.fixture
def state():
    """A snapshot of everything a bad request must not change."""

    def snapshot() -> tuple:
        return (
            list(
                User.objects.values_list("email", "password", "email_verified", "display_name").order_by("pk")
            ),
            list(EmailVerification.objects.values_list("code_hash", "attempts", "pending_password")),
            list(LoginSession.objects.values_list("sid", "revoked_at").order_by("pk")),
            BlacklistedToken.objects.count(),
            len(mail.outbox),
        )

    return snapshot


def assert_native_error(response, status: int) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "extra"}


# --- native API ----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", NATIVE)
@pytest.mark.parametrize(("label", "raw"), MALFORMED, ids=[label for label, _ in MALFORMED])
def test_native_malformed_json_is_400(alice_logged_in, state, endpoint, label, raw):
    before = state()
    response = alice_logged_in.generic("POST", NATIVE[endpoint][0], raw, content_type="application/json")
    assert_native_error(response, 400)
    assert state() == before


@pytest.mark.parametrize("endpoint", NATIVE)
def test_native_oversized_body_is_413(alice_logged_in, state, settings, endpoint):
    before = state()
    response = alice_logged_in.generic(
        "POST", NATIVE[endpoint][0], oversized(settings), content_type="application/json"
    )
    assert_native_error(response, 413)
    assert response.json()["code"] == "payload_too_large"
    assert state() == before


@pytest.mark.parametrize("endpoint", NATIVE)
def test_native_non_json_content_type_is_415(alice_logged_in, state, endpoint):
    before = state()
    response = alice_logged_in.post(NATIVE[endpoint][0], NATIVE[endpoint][1])  # multipart form
    assert_native_error(response, 415)
    assert state() == before


@pytest.mark.parametrize("endpoint", NATIVE)
@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_native_non_string_fields_are_400(alice_logged_in, state, endpoint, value):
    path, valid = NATIVE[endpoint]
    before = state()
    for field in valid:
        response = alice_logged_in.post(path, {**valid, field: value}, format="json")
        assert_native_error(response, 400)
        assert field in response.json()["extra"]["fields"]
    assert state() == before


@pytest.mark.parametrize("endpoint", NATIVE)
def test_native_missing_and_unknown_fields_are_400(alice_logged_in, state, endpoint):
    path, valid = NATIVE[endpoint]
    before = state()
    for field in valid:
        response = alice_logged_in.post(path, {k: v for k, v in valid.items() if k != field}, format="json")
        assert_native_error(response, 400)
        assert field in response.json()["extra"]["fields"]
    unknown = alice_logged_in.post(path, {**valid, "is_staff": True}, format="json")
    assert_native_error(unknown, 400)
    assert "is_staff" in unknown.json()["extra"]["fields"]
    for not_an_object in ([valid], "text", 12):
        assert_native_error(alice_logged_in.post(path, not_an_object, format="json"), 400)
    assert state() == before


@pytest.mark.parametrize("endpoint", NATIVE)
def test_native_overlong_strings_are_400(alice_logged_in, state, endpoint):
    path, valid = NATIVE[endpoint]
    before = state()
    for field in valid:
        response = alice_logged_in.post(path, {**valid, field: "a" * 5000 + "@example.com"}, format="json")
        assert_native_error(response, 400)
    assert state() == before


@pytest.mark.parametrize("query", [{}, {"q": "a" * 300}])
def test_native_search_with_bad_query_is_400(alice_logged_in, query):
    assert_native_error(alice_logged_in.get("/api/users/search", query), 400)


# --- ExpressChat endpoints -----------------------------------------------------------------


def _shape(endpoint: str, message: str) -> bytes:
    if endpoint == "update-access-token":
        return json.dumps({"message": message}, separators=(",", ":")).encode()
    return json.dumps({"success": -1, "message": message}, separators=(",", ":")).encode()


@pytest.mark.parametrize("endpoint", EXPRESSCHAT)
@pytest.mark.parametrize(("label", "raw"), MALFORMED, ids=[label for label, _ in MALFORMED])
def test_expresschat_malformed_json_is_a_json_400(web, alice, state, endpoint, label, raw):
    before = state()
    response = web.generic("POST", EXPRESSCHAT[endpoint][0], raw, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == _shape(endpoint, "Malformed JSON body")
    assert state() == before


@pytest.mark.parametrize("endpoint", EXPRESSCHAT)
def test_expresschat_oversized_body_is_a_json_413(web, alice, state, settings, endpoint):
    before = state()
    response = web.generic(
        "POST", EXPRESSCHAT[endpoint][0], oversized(settings), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.content == _shape(endpoint, "Request body too large")
    assert state() == before


@pytest.mark.parametrize("endpoint", EXPRESSCHAT)
@pytest.mark.parametrize("value", [*WRONG_TYPES, ""], ids=repr)
def test_expresschat_non_string_fields_get_the_missing_response(web, alice, state, endpoint, value):
    path, valid, (status, body) = EXPRESSCHAT[endpoint]
    before = state()
    for field in valid:
        response = web.post(path, json.dumps({**valid, field: value}), content_type="application/json")
        if endpoint == "update-access-token" and value == "":
            assert response.status_code == 401  # a string, just not a token
            continue
        assert (response.status_code, response.content) == (status, body), field
    assert state() == before


@pytest.mark.parametrize("endpoint", EXPRESSCHAT)
def test_expresschat_missing_fields_non_objects_and_non_json_get_the_missing_response(
    web, alice, state, endpoint
):
    path, valid, expected = EXPRESSCHAT[endpoint]
    before = state()
    for field in valid:
        body = json.dumps({k: v for k, v in valid.items() if k != field})
        response = web.post(path, body, content_type="application/json")
        assert (response.status_code, response.content) == expected
    for not_an_object in ("[1, 2]", '"text"', "12", ""):
        response = web.generic("POST", path, not_an_object, content_type="application/json")
        assert (response.status_code, response.content) == expected, not_an_object
    # Not JSON: Express leaves the body empty, so do we.
    response = web.post(path, valid)  # multipart form
    assert (response.status_code, response.content) == expected
    assert state() == before


@pytest.mark.parametrize("endpoint", ["signup", "resend"])
def test_expresschat_source_must_be_a_string(web, alice, state, endpoint):
    path, valid, expected = EXPRESSCHAT[endpoint]
    before = state()
    response = web.post(path, json.dumps({**valid, "source": {"$ne": ""}}), content_type="application/json")
    assert (response.status_code, response.content) == expected
    assert state() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "n" * 101), ("email", "a" * 300 + "@example.com"), ("password", "p" * 1000)],
)
def test_expresschat_signup_with_overlong_fields_is_400(web, state, field, value):
    path, valid, _ = EXPRESSCHAT["signup"]
    before = state()
    response = web.post(path, json.dumps({**valid, field: value}), content_type="application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["success"] == -1
    assert state() == before


def test_expresschat_unknown_fields_are_ignored_like_the_original(web, alice):
    # Wire compatibility: Express ignored extra keys and clients may send some (source, ...).
    response = web.post(
        "/login",
        json.dumps({"email": "alice@example.com", "password": PASSWORD, "remember": True}),
        content_type="application/json",
    )
    assert response.content == b'{"success":1,"message":"User Logged in succcessfully"}'


@pytest.mark.parametrize(
    "raw",
    [b'{"x": ', b"[" * 50_000 + b"]" * 50_000, None],
    ids=["malformed", "nested", "oversized"],
)
def test_expresschat_logout_ignores_its_body(web, settings, raw):
    raw = oversized(settings) if raw is None else raw
    response = web.generic("POST", "/logout", raw, content_type="application/json")
    assert response.status_code == 200
    assert response.content == b'{"message":"User Logged out successfully"}'


@pytest.mark.parametrize(("method", "path"), [("GET", "/login"), ("GET", "/signup"), ("POST", "/verify")])
def test_expresschat_wrong_method_is_405(web, method, path):
    assert web.generic(method, path).status_code == 405
