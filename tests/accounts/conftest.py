"""Fixtures for the accounts tests.

Tests run inside a transaction, so on_commit callbacks (verification mails, realtime publishes)
would never fire. The clients here run them when each request ends, as autocommit does in
production, so a test reads the code from mail.outbox right after the sign-up request.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User

PASSWORD = "correct horse battery"
GENEROUS_RATES = {
    "auth_login": "1000/min",
    "auth_signup": "1000/min",
    "auth_verify": "1000/min",
    "auth_resend": "1000/min",
    "auth_refresh": "1000/min",
    "message_send": "1000/min",
}


@pytest.fixture(autouse=True)
def _isolated_throttles(settings):
    """Generous rates unless a test sets its own, and no throttle history from other tests."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": dict(GENEROUS_RATES)}
    settings.CHAT = {**settings.CHAT, "VERIFICATION_RESEND_COOLDOWN_SECONDS": 60}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def set_rate(settings):
    def apply(scope: str, rate: str) -> None:
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], scope: rate}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        cache.clear()

    return apply


class _CommitMixin:
    capture = None

    def request(self, **request):
        with self.capture(execute=True):
            return super().request(**request)


class CommitAPIClient(_CommitMixin, APIClient):
    pass


class CommitClient(_CommitMixin, Client):
    pass


@pytest.fixture
def api(db, django_capture_on_commit_callbacks) -> CommitAPIClient:
    client = CommitAPIClient()
    client.capture = django_capture_on_commit_callbacks
    return client


@pytest.fixture
def web(db, django_capture_on_commit_callbacks) -> CommitClient:
    client = CommitClient()
    client.capture = django_capture_on_commit_callbacks
    return client


@pytest.fixture
def bus_sent(monkeypatch) -> list:
    """Every (groups, event) handed to the bus by publish_on_commit."""
    sent: list = []
    monkeypatch.setattr("chatproject.bus.transport.send", lambda groups, event: sent.append((groups, event)))
    return sent


def mail_to(address: str) -> mail.EmailMessage:
    messages = [m for m in mail.outbox if address.lower() in [r.lower() for r in m.to]]
    assert messages, f"no mail to {address}"
    return messages[-1]


def code_from_mail(address: str) -> str:
    match = re.search(r"code is: (\d{6})\b", mail_to(address).body)
    assert match, "no code in the mail"
    return match.group(1)


def link_from_mail(address: str) -> str:
    match = re.search(r"(https?://\S+/verify\?\S+)", mail_to(address).body)
    assert match, "no link in the mail"
    return match.group(1)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def user_make(
    email: str = "alice@example.com",
    *,
    password: str = PASSWORD,
    display_name: str = "Alice",
    verified: bool = True,
    **fields,
) -> User:
    return User.objects.create_user(
        email, password, display_name=display_name, email_verified=verified, **fields
    )


@pytest.fixture
def alice(db) -> User:
    return user_make()


@pytest.fixture
def bob(db) -> User:
    return user_make("bob@example.com", display_name="Bob")


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_superuser("admin@example.com", PASSWORD)
