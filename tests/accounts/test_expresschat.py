"""The ExpressChat endpoints at the root: bodies, statuses and cookies byte for byte, with the
original's security holes closed."""

import json
from datetime import timedelta

import jwt
import pytest
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.models import EmailVerification, LoginSession, User
from accounts.tokens import access_token_for
from messaging.models import Conversation

from .conftest import PASSWORD, code_from_mail, link_from_mail, local_path

pytestmark = pytest.mark.django_db

JSON = "application/json; charset=utf-8"


def post(web, path, body, **extra):
    return web.post(path, json.dumps(body), content_type="application/json", **extra)


def body_of(response) -> bytes:
    assert response["Content-Type"] == JSON
    return response.content


def signup(web, email="alice@example.com", password=PASSWORD, name="Alice"):
    return post(web, "/signup", {"name": name, "email": email, "password": password})


def login(web, email="alice@example.com", password=PASSWORD):
    return post(web, "/login", {"email": email, "password": password})


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_signup_verify_by_link_login_logout(web, bus_sent, settings):
    settings.PUBLIC_BASE_URL = "https://chat.example.com"
    response = signup(web, email="alice+chat@example.com")
    assert response.status_code == 200
    assert body_of(response) == b'{"success":1,"message":"Authentication mail sent successfully"}'

    link = link_from_mail("alice+chat@example.com")
    assert link.startswith("https://chat.example.com/verify?email=alice%2Bchat%40example.com&token=")
    verified = web.get(local_path(link))
    assert verified.status_code == 200
    assert verified["Content-Type"] == "text/html; charset=utf-8"
    assert b"Congrats, Email Verified" in verified.content
    assert b'content="6;url=/"' in verified.content
    assert list(verified.cookies) == ["refresh_token", "access_token"]
    user = User.objects.get(email="alice+chat@example.com")
    assert user.email_verified
    assert Conversation.objects.filter(kind="self").count() == 1

    web.cookies.clear()
    logged_in = login(web, email="alice+chat@example.com")
    assert logged_in.status_code == 200
    assert body_of(logged_in) == b'{"success":1,"message":"User Logged in succcessfully"}'
    assert list(logged_in.cookies) == ["refresh_token", "access_token"]
    access = logged_in.cookies["access_token"]
    assert access["httponly"] is True
    assert access["samesite"] == "Lax"
    assert access["path"] == "/"
    assert access["max-age"] == "" and access["expires"] == ""  # session cookie
    assert not access["secure"]
    payload = claims(access.value)
    assert payload["sub"] == user.public_id
    assert "email" not in payload
    lifetime = payload["exp"] - payload["iat"]
    assert lifetime == int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    sid = payload["sid"]

    logged_out = web.post("/logout")
    assert logged_out.status_code == 200
    assert body_of(logged_out) == b'{"message":"User Logged out successfully"}'
    assert list(logged_out.cookies) == ["access_token", "refresh_token"]
    assert logged_out.cookies["access_token"]["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert LoginSession.objects.get(sid=sid).revoked_at is not None
    assert bus_sent[-1] == (
        [f"u.{user.public_id}"],
        {"type": "session.revoked", "user_id": user.public_id, "sid": sid, "reason": "revoked"},
    )


def test_verify_path_is_case_insensitive_and_app_source_gets_json(web):
    signup(web)
    code = code_from_mail("alice@example.com")
    response = web.get("/Verify", {"email": "alice@example.com", "token": code, "source": "app"})
    assert response.status_code == 200
    assert (
        body_of(response) == b'{"success":1,"message":"User Verified and Cookies are returned in response"}'
    )
    assert list(response.cookies) == ["refresh_token", "access_token"]


def test_verify_twice_or_with_a_wrong_token_is_refused(web):
    signup(web)
    code = code_from_mail("alice@example.com")
    wrong = "123456" if code != "123456" else "654321"
    expected = b'{"success":0,"message":"Token Expired or not a valid token"}'
    bad = web.get("/verify", {"email": "alice@example.com", "token": wrong})
    assert bad.status_code == 400 and body_of(bad) == expected
    assert web.get("/verify", {"email": "alice@example.com", "token": code}).status_code == 200
    again = web.get("/verify", {"email": "alice@example.com", "token": code})
    assert again.status_code == 400 and body_of(again) == expected


@pytest.mark.parametrize(
    "query",
    [
        "email[$ne]=x&token[$ne]=0",
        "email=alice%40example.com",
        "token=123456",
        "email=alice%40example.com&email=bob%40example.com&token=123456",
        "",
    ],
)
def test_verify_with_injected_or_missing_parameters_is_refused(web, query):
    signup(web)
    response = web.get(f"/verify?{query}")
    assert response.status_code == 400
    assert body_of(response) == b'{"success":0,"message":"Token Expired or not a valid token"}'
    assert not User.objects.get().email_verified


def test_expired_code_is_refused_on_verify(web):
    signup(web)
    EmailVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = web.get(
        "/verify", {"email": "alice@example.com", "token": code_from_mail("alice@example.com")}
    )
    assert response.status_code == 400
    assert not User.objects.get().email_verified


def test_signup_over_verified_account(web, alice):
    response = signup(web)
    assert response.status_code == 404
    assert body_of(response) == b'{"message":"User Already Exists","success":0}'


def test_signup_over_unverified_account_keeps_the_owners_password(web):
    signup(web, password="owner password 1")
    owner_code = code_from_mail("alice@example.com")
    EmailVerification.objects.update(sent_at=timezone.now() - timedelta(minutes=5))

    again = signup(web, password="intruder password 2", name="Mallory")
    assert again.status_code == 200
    assert (
        body_of(again) == b'{"success":1,"message":"Authentication mail sent successfully again to the user"}'
    )
    user = User.objects.get()
    assert user.check_password("owner password 1")  # the stored password did not change
    assert user.display_name == "Alice"
    new_code = code_from_mail("alice@example.com")
    if new_code != owner_code:
        assert web.get("/verify", {"email": "alice@example.com", "token": owner_code}).status_code == 400

    # Whoever reads the mailbox decides: the password sent with the used code wins.
    assert web.get("/verify", {"email": "alice@example.com", "token": new_code}).status_code == 200
    user.refresh_from_db()
    assert user.check_password("intruder password 2")
    assert user.display_name == "Mallory"


def test_signup_again_within_the_cooldown_sends_no_mail(web):
    signup(web)
    response = signup(web)
    assert response.status_code == 429
    assert json.loads(body_of(response))["success"] == -1
    assert len(mail.outbox) == 1


def test_signup_with_invalid_email_or_weak_password(web):
    bad_email = signup(web, email="not-an-email")
    assert bad_email.status_code == 400
    assert body_of(bad_email) == b'{"success":-1,"message":"Email Don\'t Exist, Enter a Valid Email"}'
    weak = signup(web, password="12345")
    assert weak.status_code == 400
    assert json.loads(weak.content)["success"] == -1
    assert not User.objects.exists()


def test_login_does_not_reveal_whether_the_account_exists(web, alice):
    wrong = login(web, password="wrong password")
    unknown = login(web, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 200
    assert body_of(wrong) == body_of(unknown) == b'{"success":0,"message":"Incorrect PassWord"}'
    assert not wrong.cookies and not unknown.cookies


def test_unverified_login_reports_minus_two_only_with_the_right_password(web):
    signup(web)
    assert body_of(login(web, password="wrong password")) == b'{"success":0,"message":"Incorrect PassWord"}'
    response = login(web)
    assert response.status_code == 404
    assert body_of(response) == b'{"success":-2,"message":"Account Exist but Email not verified"}'
    assert not response.cookies


def test_banned_user_login_is_refused(web, alice):
    services.user_ban(user=alice, by=None, reason="spam")
    response = login(web)
    assert response.status_code == 403
    assert body_of(response) == b'{"success":-1,"message":"Account suspended"}'
    assert not response.cookies


def test_secure_cookies_when_session_cookies_are_secure(web, alice, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = login(web)
    assert response.cookies["refresh_token"]["secure"] is True
    assert response.cookies["access_token"]["secure"] is True


def test_resend_contract(web, alice):
    missing = post(web, "/resend", {})
    assert missing.status_code == 404
    assert body_of(missing) == b'{"message":"Email Not Specified","success":-1}'
    unknown = post(web, "/resend", {"email": "nobody@example.com"})
    assert unknown.status_code == 404
    assert body_of(unknown) == b'{"message":"No user with this email exists","success":-1}'
    verified = post(web, "/resend", {"email": "alice@example.com"})
    assert verified.status_code == 404
    assert body_of(verified) == b'{"message":"Email Already Verified","success":0}'

    signup(web, email="bob@example.com", name="Bob")
    cooled = post(web, "/resend", {"email": "bob@example.com", "source": "app"})
    assert cooled.status_code == 429
    EmailVerification.objects.update(sent_at=timezone.now() - timedelta(minutes=5))
    sent = post(web, "/resend", {"email": "bob@example.com", "source": "app"})
    assert sent.status_code == 200
    assert body_of(sent) == b'{"success":1,"message":"Verification Link Sent Succesfully"}'
    assert len([m for m in mail.outbox if "bob@example.com" in m.to]) == 2


def test_logout_without_cookies_sends_no_set_cookie(web):
    response = web.post("/logout")
    assert response.status_code == 200
    assert body_of(response) == b'{"message":"User Logged out successfully"}'
    assert not response.cookies


def test_logout_with_forged_cookies_still_answers_and_clears_them(web):
    web.cookies["access_token"] = "forged"
    web.cookies["refresh_token"] = "forged"
    response = web.post("/logout")
    assert response.status_code == 200
    assert list(response.cookies) == ["access_token", "refresh_token"]


def test_update_access_token_accepts_a_live_token_of_the_same_user(web, alice):
    login(web)
    sid = claims(web.cookies["refresh_token"].value)["sid"]
    fresh, _ = access_token_for(user=alice, sid=sid)
    response = post(web, "/update-access-token", {"acessToken": fresh})
    assert response.status_code == 200
    assert body_of(response) == b'{"message":"Cookie updated successfully"}'
    cookie = response.cookies["access_token"]
    assert cookie.value == fresh
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax" and cookie["path"] == "/"


def test_update_access_token_refuses_anything_else(web, alice, bob):
    login(web)
    sid = claims(web.cookies["refresh_token"].value)["sid"]
    bob_session = services.user_authenticate(email="bob@example.com", password=PASSWORD)
    invalid = b'{"message":"Invalid Access Token"}'

    for token in ("not a token", "", bob_session.tokens.access):
        response = post(web, "/update-access-token", {"acessToken": token})
        assert response.status_code == 401, token
        assert body_of(response) == invalid
        assert "access_token" not in response.cookies

    fresh, _ = access_token_for(user=alice, sid=sid)
    LoginSession.objects.filter(sid=sid).update(revoked_at=timezone.now())
    revoked = post(web, "/update-access-token", {"acessToken": fresh})
    assert revoked.status_code == 401

    web.cookies.clear()
    no_refresh = post(web, "/update-access-token", {"acessToken": fresh})
    assert no_refresh.status_code == 401


@pytest.mark.parametrize("value", [None, 12, ["x"], {"$ne": ""}])
def test_update_access_token_without_a_string_token(web, value):
    body = {} if value is None else {"acessToken": value}
    response = post(web, "/update-access-token", body)
    assert response.status_code == 404
    assert body_of(response) == b'{"message":"No Access Token Specified"}'


def test_pages_render_and_link_the_api_docs_and_admin(web):
    for path in ("/", "/auth"):
        response = web.get(path)
        assert response.status_code == 200
        assert b"/api/docs/" in response.content and b"/admin/" in response.content


def test_case_insensitive_routes_do_not_break_reverse():
    from django.urls import reverse

    assert reverse("expresschat:verify") == "/verify"
    assert reverse("expresschat:update-access-token") == "/update-access-token"
    assert reverse("admin:index") == "/admin/"


def test_throttled_login_answers_429_in_the_endpoint_shape(web, alice, set_rate):
    set_rate("auth_login", "2/min")
    assert login(web).status_code == 200
    assert login(web).status_code == 200
    response = login(web)
    assert response.status_code == 429
    assert body_of(response) == b'{"success":-1,"message":"Too Many Requests"}'
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("scope", "request_once"),
    [
        ("auth_signup", lambda web: signup(web, email="new@example.com")),
        ("auth_verify", lambda web: web.get("/verify", {"email": "a@example.com", "token": "123456"})),
        ("auth_resend", lambda web: post(web, "/resend", {"email": "nobody@example.com"})),
    ],
)
def test_auth_endpoints_are_throttled(web, set_rate, scope, request_once):
    set_rate(scope, "1/min")
    request_once(web)
    response = request_once(web)
    assert response.status_code == 429
    assert json.loads(body_of(response)) == {"success": -1, "message": "Too Many Requests"}


def test_forwarded_for_header_does_not_dodge_the_throttle(web, alice, set_rate):
    set_rate("auth_login", "1/min")
    login(web)
    response = post(
        web,
        "/login",
        {"email": "alice@example.com", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert response.status_code == 429
