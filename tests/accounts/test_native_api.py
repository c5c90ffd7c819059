"""The native API under /api/: the whole account life cycle through real endpoints."""

from datetime import timedelta

import jwt
import pytest
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.models import EmailVerification, LoginSession, User
from messaging.models import Conversation

from .conftest import PASSWORD, code_from_mail, user_make

pytestmark = pytest.mark.django_db


def signup(api, email="alice@example.com", password=PASSWORD, display_name="Alice"):
    return api.post(
        "/api/auth/signup",
        {"email": email, "password": password, "display_name": display_name},
        format="json",
    )


def login(api, email="alice@example.com", password=PASSWORD):
    return api.post("/api/auth/login", {"email": email, "password": password}, format="json")


def sid_of(refresh: str) -> str:
    return jwt.decode(refresh, options={"verify_signature": False})["sid"]


def bearer(api, access: str) -> None:
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")


def test_signup_verify_login_refresh_logout(api, bus_sent):
    response = signup(api, email="Alice@Example.com")
    assert response.status_code == 202
    assert response.json()["email"] == "alice@example.com"

    verified = api.post(
        "/api/auth/verify",
        {"email": "alice@example.com", "code": code_from_mail("alice@example.com")},
        format="json",
    )
    assert verified.status_code == 200
    user = User.objects.get(email="alice@example.com")
    assert verified.json()["user"] == {
        "id": user.public_id,
        "display_name": "Alice",
        "email": "alice@example.com",
        "created_at": verified.json()["user"]["created_at"],
    }
    assert Conversation.objects.filter(kind="self", unique_key__isnull=False).count() == 1

    logged_in = login(api)
    assert logged_in.status_code == 200
    assert set(logged_in.json()) == {"access", "refresh", "user"}
    refresh = logged_in.json()["refresh"]

    rotated = api.post("/api/auth/refresh", {"refresh": refresh}, format="json")
    assert rotated.status_code == 200
    pair = rotated.json()
    assert pair["refresh"] != refresh

    bearer(api, pair["access"])
    assert api.get("/api/users/me").json()["id"] == user.public_id
    assert api.post("/api/auth/logout", {"refresh": pair["refresh"]}, format="json").status_code == 204

    session = LoginSession.objects.get(user=user, sid=sid_of(pair["refresh"]))
    assert session.revoked_at is not None
    assert bus_sent == [
        (
            [f"u.{user.public_id}"],
            {"type": "session.revoked", "user_id": user.public_id, "sid": session.sid, "reason": "revoked"},
        )
    ]
    assert api.get("/api/users/me").status_code == 401
    again = api.post("/api/auth/refresh", {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 401


def test_refresh_keeps_the_session_id(api, alice):
    first = login(api).json()
    second = api.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json").json()
    assert sid_of(first["refresh"]) == sid_of(second["refresh"])


def test_reused_refresh_token_after_rotation_is_refused(api, alice):
    refresh = login(api).json()["refresh"]
    assert api.post("/api/auth/refresh", {"refresh": refresh}, format="json").status_code == 200
    replay = api.post("/api/auth/refresh", {"refresh": refresh}, format="json")
    assert replay.status_code == 401
    assert replay.json()["code"] == "authentication_failed"


def test_refresh_of_banned_user_is_refused(api, alice):
    refresh = login(api).json()["refresh"]
    alice.is_banned = True
    alice.save(update_fields=["is_banned"])
    response = api.post("/api/auth/refresh", {"refresh": refresh}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "banned"


def test_refresh_of_deactivated_user_is_refused(api, alice):
    refresh = login(api).json()["refresh"]
    services.user_deactivate(user=alice, by=None)
    response = api.post("/api/auth/refresh", {"refresh": refresh}, format="json")
    assert response.status_code == 401
    assert login(api).status_code == 403


def test_login_with_wrong_password_and_unknown_email_fail_alike(api, alice):
    wrong = login(api, password="not the password")
    unknown = login(api, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_unverified_login_is_refused_only_after_the_right_password(api):
    signup(api)
    assert login(api, password="wrong password!").status_code == 401
    response = login(api)
    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"


def test_banned_user_cannot_log_in(api, alice):
    services.user_ban(user=alice, by=None, reason="spam")
    response = login(api)
    assert response.status_code == 403
    assert response.json()["code"] == "banned"


def test_banned_user_access_token_stops_working(api, alice):
    bearer(api, login(api).json()["access"])
    assert api.get("/api/users/me").status_code == 200
    services.user_ban(user=alice, by=None)
    assert api.get("/api/users/me").status_code == 401


def test_signup_with_email_of_verified_user_conflicts(api, alice):
    response = signup(api)
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert mail.outbox == []


def test_signup_with_weak_password_is_refused(api):
    response = signup(api, password="123")
    assert response.status_code == 400
    assert "password" in response.json()["extra"]["fields"]
    assert not User.objects.exists()


def test_wrong_code_is_refused_and_counted(api):
    signup(api)
    code = code_from_mail("alice@example.com")
    wrong = "000000" if code != "000000" else "111111"
    response = api.post("/api/auth/verify", {"email": "alice@example.com", "code": wrong}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "code_invalid"
    assert EmailVerification.objects.get().attempts == 1
    assert not User.objects.get().email_verified


def test_expired_code_is_refused(api):
    signup(api)
    EmailVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.post(
        "/api/auth/verify",
        {"email": "alice@example.com", "code": code_from_mail("alice@example.com")},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "code_expired"
    assert not User.objects.get().email_verified


def test_code_dies_after_too_many_wrong_tries(api, settings):
    signup(api)
    code = code_from_mail("alice@example.com")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(settings.CHAT["VERIFICATION_MAX_ATTEMPTS"]):
        api.post("/api/auth/verify", {"email": "alice@example.com", "code": wrong}, format="json")
    response = api.post("/api/auth/verify", {"email": "alice@example.com", "code": code}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "too_many_attempts"
    assert not User.objects.get().email_verified


def test_code_is_single_use(api):
    signup(api)
    body = {"email": "alice@example.com", "code": code_from_mail("alice@example.com")}
    assert api.post("/api/auth/verify", body, format="json").status_code == 200
    assert api.post("/api/auth/verify", body, format="json").status_code == 400


def test_resend_has_a_cooldown_and_replaces_the_code(api):
    signup(api)
    old_code = code_from_mail("alice@example.com")
    cooled = api.post("/api/auth/resend", {"email": "alice@example.com"}, format="json")
    assert cooled.status_code == 202  # answered like any other address...
    assert len(mail.outbox) == 1  # ... but within the cooldown no mail goes out

    EmailVerification.objects.update(sent_at=timezone.now() - timedelta(minutes=5))
    assert api.post("/api/auth/resend", {"email": "alice@example.com"}, format="json").status_code == 202
    assert len(mail.outbox) == 2
    new_code = code_from_mail("alice@example.com")
    if new_code != old_code:
        stale = api.post("/api/auth/verify", {"email": "alice@example.com", "code": old_code}, format="json")
        assert stale.status_code == 400
    fresh = api.post("/api/auth/verify", {"email": "alice@example.com", "code": new_code}, format="json")
    assert fresh.status_code == 200


def test_resend_answers_unknown_verified_and_waiting_addresses_alike(api, alice):
    answers = [
        api.post("/api/auth/resend", {"email": address}, format="json")
        for address in ("nobody@example.com", "alice@example.com")
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert [sorted(a.json()) for a in answers] == [["code_expires_at", "email"]] * 2
    assert answers[0].json()["email"] == "nobody@example.com"
    assert len(mail.outbox) == 0  # nobody was mailed: one address is unknown, the other verified


def test_logout_requires_authentication(api, alice):
    refresh = login(api).json()["refresh"]
    assert api.post("/api/auth/logout", {"refresh": refresh}, format="json").status_code == 401


def test_logout_with_someone_elses_refresh_token_is_refused(api, alice, bob):
    alice_refresh = login(api).json()["refresh"]
    bearer(api, login(api, email="bob@example.com").json()["access"])
    response = api.post("/api/auth/logout", {"refresh": alice_refresh}, format="json")
    assert response.status_code == 403
    assert not LoginSession.objects.filter(user=alice, revoked_at__isnull=False).exists()


def test_me_requires_authentication(api):
    assert api.get("/api/users/me").status_code == 401


def test_user_detail_hides_emails_and_invisible_users(api, alice, bob):
    carol = user_make("carol@example.com", display_name="Carol", verified=False)
    bearer(api, login(api).json()["access"])
    shown = api.get(f"/api/users/{bob.public_id}")
    assert shown.status_code == 200
    assert shown.json() == {
        "id": bob.public_id,
        "display_name": "Bob",
        "created_at": shown.json()["created_at"],
    }
    assert api.get(f"/api/users/{carol.public_id}").status_code == 404
    assert api.get("/api/users/000000000000000000000000").status_code == 404
    assert api.get("/api/users/42").status_code == 404


def test_session_login_makes_the_browsable_api_usable(web, alice):
    page = web.get("/api-auth/login/")
    assert page.status_code == 200
    response = web.post(
        "/api-auth/login/", {"username": "alice@example.com", "password": PASSWORD, "next": "/api/users/me"}
    )
    assert response.status_code == 302
    browsable = web.get("/api/users/me", HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200
    assert b"alice@example.com" in browsable.content


def test_schema_documents_the_accounts_endpoints(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/auth/signup",
        "/api/auth/verify",
        "/api/auth/resend",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/users/me",
        "/api/users/search",
        "/api/users/{public_id}",
    ):
        assert path in paths, path
    login_op = paths["/api/auth/login"]["post"]
    assert "requestBody" in login_op
    assert {"200", "401", "429"} <= set(login_op["responses"])


@pytest.mark.parametrize(
    ("scope", "path", "body"),
    [
        ("auth_login", "/api/auth/login", {"email": "alice@example.com", "password": "wrong password"}),
        ("auth_signup", "/api/auth/signup", {"email": "x@example.com", "password": "1", "display_name": "X"}),
        ("auth_verify", "/api/auth/verify", {"email": "alice@example.com", "code": "123456"}),
        ("auth_resend", "/api/auth/resend", {"email": "nobody@example.com"}),
    ],
)
def test_auth_endpoints_are_throttled(api, set_rate, scope, path, body):
    set_rate(scope, "2/min")
    for _ in range(2):
        assert api.post(path, body, format="json").status_code != 429
    response = api.post(path, body, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
