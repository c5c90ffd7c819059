"""Failed logins of one account back off, whoever tries and from wherever (issue: hardening,
item 4): per-IP throttles alone let 9 addresses x 10 guesses through."""

import time
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from accounts import services
from accounts.services import _login_key

pytestmark = pytest.mark.django_db

FAST = {"LOGIN_FAILURES_FREE": 3, "LOGIN_BACKOFF_MAX_SECONDS": 900, "LOGIN_FAILURE_WINDOW_SECONDS": 3600}


@pytest.fixture
def chat_backoff(settings):
    settings.CHAT = {**settings.CHAT, **FAST}


@pytest.fixture
def person(make_user):
    email = f"backoff-{uuid.uuid4().hex[:12]}@example.com"
    user = make_user("Backoff", email=email)
    yield user, email
    cache.delete_many([_login_key(email, "failures"), _login_key(email, "until")])


def _login(client, email, password, address):
    return client.post(
        "/api/auth/login", {"email": email, "password": password}, format="json", REMOTE_ADDR=address
    )


def test_failures_from_many_addresses_make_the_account_wait_and_then_the_right_password_waits_too(
    client_for, chat_backoff, person
):
    _user, email = person
    client = client_for()
    for i in range(3):  # free
        assert _login(client, email, "wrong", f"10.0.0.{i}").json()["code"] == "authentication_failed"
    # The 3rd failure started a 1 s wait: the next try is refused before any password is read,
    # from another address, with the right password too.
    refused = _login(client, email, "correct horse 42", "10.0.0.99")
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert refused.json()["extra"]["retry_after"] >= 1


def test_unknown_addresses_back_off_alike(client_for, chat_backoff):
    email = f"nobody-{uuid.uuid4().hex[:12]}@example.com"
    client = client_for()
    for i in range(3):
        assert _login(client, email, "x", f"10.0.1.{i}").json()["code"] == "authentication_failed"
    assert _login(client, email, "x", "10.0.1.9").json()["code"] == "throttled"
    cache.delete_many([_login_key(email, "failures"), _login_key(email, "until")])


def test_a_successful_login_forgets_the_failures(client_for, chat_backoff, person):
    _user, email = person
    client = client_for()
    for _ in range(2):
        _login(client, email, "wrong", "10.0.2.1")
    assert _login(client, email, "correct horse 42", "10.0.2.1").status_code == 200
    for _ in range(2):  # two more are free again
        assert _login(client, email, "wrong", "10.0.2.1").json()["code"] == "authentication_failed"


def test_the_expresschat_login_answers_a_backoff_as_its_throttle_does(client_for, chat_backoff, person):
    _user, email = person
    client = client_for()
    for _ in range(3):
        client.post("/login", {"email": email, "password": "wrong"}, format="json")
    refused = client.post("/login", {"email": email, "password": "wrong"}, format="json")
    assert refused.status_code == 429 and refused["Retry-After"]


def test_backoff_grows_and_is_capped():
    email = f"grow-{uuid.uuid4().hex[:12]}@example.com"
    with override_settings(CHAT={**settings.CHAT, **FAST, "LOGIN_BACKOFF_MAX_SECONDS": 4}):
        waits = []
        for _ in range(8):
            services.login_failed(email)
            until = cache.get(_login_key(email, "until"))
            waits.append(None if until is None else round(until - time.time()))
    assert waits[:2] == [None, None] and waits[2:6] == [1, 2, 4, 4]
    cache.delete_many([_login_key(email, "failures"), _login_key(email, "until")])


def test_the_admin_login_backs_off_too(client, chat_backoff, make_user):
    email = f"admin-{uuid.uuid4().hex[:12]}@example.com"
    admin = make_user("Boss", email=email).user
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    for _ in range(3):
        client.post("/admin/login/", {"username": email, "password": "wrong"})
    # Waiting now: the right password does not get in either.
    client.post("/admin/login/", {"username": email, "password": "correct horse 42"})
    assert client.get("/admin/").status_code == 302
    cache.delete_many([_login_key(email, "failures"), _login_key(email, "until")])
    client.post("/admin/login/", {"username": email, "password": "correct horse 42"})
    assert client.get("/admin/").status_code == 200
