"""The user admin: actions go through the services, so bans cut sessions and sockets."""

import pytest

from accounts.backends import ChatModelBackend
from accounts.models import LoginSession, User

from .conftest import PASSWORD, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_web(web, staff):
    web.force_login(staff)
    return web


def act(admin_web, action: str, *users: User, reason: str | None = None):
    data = {"action": action, "_selected_action": [user.pk for user in users]}
    if reason is not None:  # bans and unbans ask for a reason first (tests/moderation/)
        data |= {"apply": "yes", "reason": reason}
    return admin_web.post("/admin/accounts/user/", data, follow=True)


def test_admin_ban_action_bans_and_ends_sessions(admin_web, alice, bob, bus_sent):
    admin_web.post(
        "/login", {"email": "alice@example.com", "password": PASSWORD}, content_type="application/json"
    )
    assert LoginSession.objects.filter(user=alice, revoked_at__isnull=True).exists()
    response = act(admin_web, "ban_users", alice, bob, reason="Spam")
    assert response.status_code == 200
    assert b"Banned 2 user(s)." in response.content
    assert set(User.objects.filter(is_banned=True).values_list("email", flat=True)) == {
        "alice@example.com",
        "bob@example.com",
    }
    assert not LoginSession.objects.filter(user=alice, revoked_at__isnull=True).exists()
    assert {event["user_id"] for _, event in bus_sent} == {alice.public_id, bob.public_id}
    assert all(event["reason"] == "banned" for _, event in bus_sent)

    act(admin_web, "unban_users", alice, reason="Appeal accepted")
    assert not User.objects.get(pk=alice.pk).is_banned


def test_admin_cannot_ban_itself(admin_web, staff):
    response = act(admin_web, "ban_users", staff, reason="Oops")
    assert b"cannot do this to your own account" in response.content
    assert not User.objects.get(pk=staff.pk).is_banned


def test_admin_verify_and_deactivate_actions(admin_web, bus_sent):
    carol = user_make("carol@example.com", display_name="Carol", verified=False)
    act(admin_web, "verify_users", carol)
    assert User.objects.get(pk=carol.pk).email_verified
    act(admin_web, "deactivate_users", carol)
    assert not User.objects.get(pk=carol.pk).is_active
    assert bus_sent[-1][1]["reason"] == "deactivated"


def test_admin_list_search_filters_and_change_form(admin_web, alice):
    listing = admin_web.get("/admin/accounts/user/", {"q": "alice", "is_banned__exact": "0"})
    assert listing.status_code == 200
    assert alice.public_id.encode() in listing.content
    change = admin_web.get(f"/admin/accounts/user/{alice.pk}/change/")
    assert change.status_code == 200
    assert b'name="password"' not in change.content
    assert alice.password.encode() not in change.content
    assert b'name="is_banned"' not in change.content  # only through the actions
    assert admin_web.get("/admin/accounts/user/add/").status_code == 403


def test_admin_save_cannot_change_protected_fields(admin_web, alice):
    admin_web.post(
        f"/admin/accounts/user/{alice.pk}/change/",
        {"display_name": "Alice Renamed", "is_banned": "on", "email": "x@example.com", "password": "x"},
    )
    alice.refresh_from_db()
    assert alice.display_name == "Alice Renamed"
    assert not alice.is_banned
    assert alice.email == "alice@example.com"
    assert alice.check_password(PASSWORD)


def test_session_backend_refuses_banned_and_unverified_users(alice, settings, rf):
    settings.AUTHENTICATION_BACKENDS = ["accounts.backends.ChatModelBackend"]
    backend = ChatModelBackend()
    assert backend.authenticate(rf.get("/"), username="alice@example.com", password=PASSWORD) == alice
    User.objects.filter(pk=alice.pk).update(is_banned=True)
    assert backend.get_user(alice.pk) is None
    user_make("unv@example.com", verified=False)
    assert backend.authenticate(rf.get("/"), username="unv@example.com", password=PASSWORD) is None
