"""The accounts services as plain functions: every branch of the rules."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import events, services
from accounts.models import EmailVerification, LoginSession, User
from chatproject.core.errors import ApplicationError, ErrorCode

from .conftest import PASSWORD, code_from_mail, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    def run(function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(**kwargs)

    return run


def register(run_on_commit, email="alice@example.com", password=PASSWORD, display_name="Alice"):
    return run_on_commit(services.user_register, email=email, password=password, display_name=display_name)


def error_code(function, **kwargs) -> ErrorCode:
    with pytest.raises(ApplicationError) as info:
        function(**kwargs)
    return info.value.code


def test_register_stores_only_an_hmac_of_the_code(run_on_commit, settings):
    sent = register(run_on_commit)
    code = code_from_mail("alice@example.com")
    verification = EmailVerification.objects.get(user=sent.user)
    assert code not in verification.code_hash
    assert len(verification.code_hash) == 64
    assert sent.expires_at - verification.sent_at == timedelta(
        seconds=settings.CHAT["VERIFICATION_CODE_TTL_SECONDS"]
    )
    assert not sent.resent
    assert sent.user.check_password(PASSWORD)


def test_verification_mail_has_the_code_and_an_encoded_link(run_on_commit, settings):
    settings.PUBLIC_BASE_URL = "https://chat.example.org"
    register(run_on_commit, email="a+b@example.com")
    message = mail.outbox[0]
    code = code_from_mail("a+b@example.com")
    link = f"https://chat.example.org/verify?email=a%2Bb%40example.com&token={code}"
    assert link in message.body
    assert link.replace("&", "&amp;") in message.alternatives[0][0]


def test_no_mail_when_the_transaction_rolls_back(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.user_register(email="alice@example.com", password=PASSWORD, display_name="Alice")
    assert len(callbacks) == 1  # the mail waits for the commit
    assert mail.outbox == []


def test_register_over_unverified_account_keeps_password_until_code_is_used(run_on_commit):
    register(run_on_commit, password="first password 1")
    EmailVerification.objects.update(sent_at=timezone.now() - timedelta(minutes=2))
    sent = register(run_on_commit, password="second password 2", display_name="Alice Two")
    assert sent.resent
    user = User.objects.get()
    assert user.check_password("first password 1")
    assert user.display_name == "Alice"

    login = services.user_verify_email(email="alice@example.com", code=code_from_mail("alice@example.com"))
    assert login.user.check_password("second password 2")
    assert login.user.display_name == "Alice Two"
    assert not EmailVerification.objects.exists()


def test_register_respects_the_cooldown(run_on_commit):
    register(run_on_commit)
    with pytest.raises(ApplicationError) as info:
        register(run_on_commit)
    assert info.value.code == ErrorCode.COOLDOWN
    assert 0 < info.value.extra["retry_after"] <= 60
    assert len(mail.outbox) == 1


def test_register_over_banned_unverified_account_is_refused(run_on_commit):
    user_make(verified=False, is_banned=True)
    assert error_code(
        services.user_register, email="alice@example.com", password=PASSWORD, display_name="A"
    ) == (ErrorCode.BANNED)
    assert mail.outbox == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_register_rejects_bad_display_names(db, name):
    code = error_code(services.user_register, email="alice@example.com", password=PASSWORD, display_name=name)
    assert code == ErrorCode.INVALID
    assert not User.objects.exists()


def test_register_rejects_overlong_password(db):
    code = error_code(services.user_register, email="alice@example.com", password="p" * 129, display_name="A")
    assert code == ErrorCode.INVALID


def test_verify_counts_attempts_and_kills_the_code(run_on_commit, settings):
    register(run_on_commit)
    code = code_from_mail("alice@example.com")
    wrong = "100000" if code != "100000" else "100001"
    max_attempts = settings.CHAT["VERIFICATION_MAX_ATTEMPTS"]
    for used in range(1, max_attempts + 1):
        with pytest.raises(ApplicationError) as info:
            services.user_verify_email(email="alice@example.com", code=wrong)
        assert info.value.code == ErrorCode.CODE_INVALID
        assert info.value.extra["attempts_left"] == max_attempts - used
    assert (
        error_code(services.user_verify_email, email="alice@example.com", code=code)
        == ErrorCode.TOO_MANY_ATTEMPTS
    )
    assert not User.objects.get().email_verified


def test_verify_right_code_after_some_wrong_ones(run_on_commit, settings):
    register(run_on_commit)
    code = code_from_mail("alice@example.com")
    wrong = "100000" if code != "100000" else "100001"
    for _ in range(settings.CHAT["VERIFICATION_MAX_ATTEMPTS"] - 1):
        with pytest.raises(ApplicationError):
            services.user_verify_email(email="alice@example.com", code=wrong)
    assert services.user_verify_email(email="alice@example.com", code=code).user.email_verified


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "١٢٣٤٥٦"])
def test_verify_rejects_malformed_codes(run_on_commit, code):
    register(run_on_commit)
    assert (
        error_code(services.user_verify_email, email="alice@example.com", code=code) == ErrorCode.CODE_INVALID
    )


def test_verify_for_unknown_or_verified_email_looks_like_a_wrong_code(alice):
    assert (
        error_code(services.user_verify_email, email="nobody@example.com", code="123456")
        == ErrorCode.CODE_INVALID
    )
    assert (
        error_code(services.user_verify_email, email="alice@example.com", code="123456")
        == ErrorCode.CODE_INVALID
    )


def test_verify_of_a_banned_account_is_refused(run_on_commit):
    register(run_on_commit)
    User.objects.update(is_banned=True)
    code = code_from_mail("alice@example.com")
    assert error_code(services.user_verify_email, email="alice@example.com", code=code) == ErrorCode.BANNED
    assert not User.objects.get().email_verified
    assert not LoginSession.objects.exists()


def test_resend_keeps_the_pending_password(run_on_commit):
    register(run_on_commit, password="pending password 9")
    EmailVerification.objects.update(sent_at=timezone.now() - timedelta(minutes=2))
    run_on_commit(services.verification_resend, email="ALICE@example.com")
    assert len(mail.outbox) == 2
    login = services.user_verify_email(email="alice@example.com", code=code_from_mail("alice@example.com"))
    assert login.user.check_password("pending password 9")


def test_authenticate_checks_password_before_revealing_state(db):
    user_make(verified=False)
    assert error_code(services.user_authenticate, email="alice@example.com", password="nope") == (
        ErrorCode.AUTHENTICATION_FAILED
    )
    assert error_code(services.user_authenticate, email="alice@example.com", password=PASSWORD) == (
        ErrorCode.EMAIL_NOT_VERIFIED
    )
    User.objects.update(is_active=False, email_verified=True)
    assert error_code(services.user_authenticate, email="alice@example.com", password="nope") == (
        ErrorCode.AUTHENTICATION_FAILED
    )
    assert error_code(services.user_authenticate, email="alice@example.com", password=PASSWORD) == (
        ErrorCode.PERMISSION_DENIED
    )


def test_authenticate_is_case_insensitive_on_email(alice):
    assert services.user_authenticate(email="  ALICE@Example.COM ", password=PASSWORD).user == alice


def test_session_refresh_refuses_revoked_sessions(alice):
    login = services.user_authenticate(email="alice@example.com", password=PASSWORD)
    LoginSession.objects.update(revoked_at=timezone.now())
    assert error_code(services.session_refresh, refresh_token=login.tokens.refresh) == (
        ErrorCode.AUTHENTICATION_FAILED
    )


def test_logout_publishes_once_and_is_idempotent(alice, run_on_commit, bus_sent):
    login = services.user_authenticate(email="alice@example.com", password=PASSWORD)
    assert run_on_commit(services.user_logout, refresh_token=login.tokens.refresh, user=alice) is True
    assert len(bus_sent) == 1
    assert run_on_commit(services.user_logout, access_token=login.tokens.access) is False
    assert len(bus_sent) == 1


def test_logout_by_expired_access_token_ends_the_session(alice, run_on_commit, bus_sent, settings):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=-1)}
    login = services.user_authenticate(email="alice@example.com", password=PASSWORD)
    assert run_on_commit(services.user_logout, refresh_token="garbage", access_token=login.tokens.access)
    assert LoginSession.objects.get(sid=login.tokens.sid).revoked_at is not None


def test_ban_revokes_every_session_and_publishes(alice, staff, run_on_commit, bus_sent):
    first = services.user_authenticate(email="alice@example.com", password=PASSWORD)
    services.user_authenticate(email="alice@example.com", password=PASSWORD)
    run_on_commit(services.user_ban, user=alice, by=staff, reason="spam")
    alice.refresh_from_db()
    assert alice.is_banned and alice.banned_at is not None and alice.ban_reason == "spam"
    assert not LoginSession.objects.filter(user=alice, revoked_at__isnull=True).exists()
    assert (
        BlacklistedToken.objects.filter(token__user=alice).count()
        == OutstandingToken.objects.filter(user=alice).count()
    )
    assert bus_sent == [
        (
            [f"u.{alice.public_id}"],
            {"type": "session.revoked", "user_id": alice.public_id, "sid": None, "reason": "banned"},
        )
    ]
    assert (
        error_code(services.session_refresh, refresh_token=first.tokens.refresh)
        == ErrorCode.AUTHENTICATION_FAILED
    )

    run_on_commit(services.user_unban, user=alice, by=staff)
    alice.refresh_from_db()
    assert not alice.is_banned and alice.banned_at is None and alice.ban_reason == ""
    assert services.user_authenticate(email="alice@example.com", password=PASSWORD).user == alice


def test_deactivation_publishes_with_its_reason(alice, run_on_commit, bus_sent):
    services.user_authenticate(email="alice@example.com", password=PASSWORD)
    run_on_commit(services.user_deactivate, user=alice, by=None)
    assert bus_sent[0][1]["reason"] == "deactivated"
    run_on_commit(services.user_activate, user=alice, by=None)
    assert services.user_authenticate(email="alice@example.com", password=PASSWORD).user == alice


def test_only_staff_may_ban_and_not_themselves(alice, bob, staff):
    assert error_code(services.user_ban, user=bob, by=alice) == ErrorCode.PERMISSION_DENIED
    assert error_code(services.user_ban, user=staff, by=staff) == ErrorCode.PERMISSION_DENIED
    plain_staff = user_make("mod@example.com", is_staff=True)
    assert error_code(services.user_ban, user=staff, by=plain_staff) == ErrorCode.PERMISSION_DENIED
    services.user_ban(user=bob, by=plain_staff)
    assert User.objects.get(pk=bob.pk).is_banned


def test_mark_verified_creates_the_self_conversation(db, staff):
    from messaging.models import Conversation

    user = user_make(verified=False)
    services.user_mark_verified(user=user, by=staff)
    user.refresh_from_db()
    assert user.email_verified
    assert Conversation.objects.filter(kind="self").count() == 1


def test_session_revoked_event_survives_json():
    event = events.session_revoked(user_id="a" * 24, sid=None, reason="banned")
    assert json.loads(json.dumps(event)) == event


def test_claims_resolve_to_their_user_in_one_query_and_only_while_the_session_is_live(
    make_user, django_assert_num_queries
):
    from accounts.tokens import access_decode, user_for_claims

    alice, bob = make_user("Alice"), make_user("Bob")
    claims = access_decode(alice.access)
    with django_assert_num_queries(1):  # every REST request and socket handshake pays this
        assert user_for_claims(claims) == alice.user
    # Another user's session id in the claims is not a session of this user.
    forged = claims.__class__(
        user_id=alice.id, sid=access_decode(bob.access).sid, expires_at=claims.expires_at
    )
    with pytest.raises(ApplicationError) as caught:
        user_for_claims(forged)
    assert caught.value.code == ErrorCode.AUTHENTICATION_FAILED
    services.user_logout_everywhere(user=alice.user)
    with pytest.raises(ApplicationError) as caught:
        user_for_claims(claims)
    assert caught.value.message == "Session revoked."
