"""Tenants in the admin, through the real admin views: masked secrets, key rotation, token and
handle revocation, each asking a reason and recorded in the moderation log."""

import pytest
from django.contrib.messages import get_messages

from accounts import tenancy
from accounts.models import App, IdHandle, ModerationAction, User, mask_secret
from tests.moderation.conftest import admin_for, staff_make  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

APPS = "/admin/accounts/app/"


def notes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def action(name: str, *objects, reason: str | None = None) -> dict:
    data = {"action": name, "_selected_action": [obj.pk for obj in objects]}
    if reason is not None:
        data |= {"apply": "yes", "reason": reason}
    return data


@pytest.fixture
def staff(db) -> User:
    return staff_make(
        "ops@example.com",
        "accounts.view_app",
        "accounts.change_app",
        "accounts.add_app",
        "accounts.view_user",
        "accounts.change_user",
        "accounts.view_idhandle",
        "accounts.change_idhandle",
    )


def test_secrets_are_masked_and_shown_once_when_made(admin_for, staff, make_app):  # noqa: F811
    web = admin_for(staff)
    created = web.post(
        f"{APPS}add/",
        {"name": "Made here", "verify_url": "", "allowed_protocols": "[]", "is_active": "on"},
        follow=True,
    )
    app = App.objects.get(name="Made here")
    assert any(app.secret_1 in note and app.secret_2 in note for note in notes(created))
    page = web.get(f"{APPS}{app.pk}/change/").content.decode()
    assert app.secret_1 not in page and app.secret_2 not in page and mask_secret(app.secret_1) in page
    listing = web.get(APPS).content.decode()
    assert app.secret_1 not in listing and mask_secret(app.secret_2) in listing


def test_rotate_key_asks_a_reason_replaces_the_older_secret_and_is_recorded(admin_for, staff, make_app):  # noqa: F811
    web = admin_for(staff)
    app = make_app()
    old_1, old_2 = app.secret_1, app.secret_2
    asked = web.post(APPS, action("rotate_key", app))
    assert asked.status_code == 200 and b'name="reason"' in asked.content
    assert App.objects.get(pk=app.pk).secret_1 == old_1
    done = web.post(APPS, action("rotate_key", app, reason="quarterly rotation"), follow=True)
    app.refresh_from_db()
    assert app.secret_1 != old_1 and app.secret_2 == old_2
    assert any(app.secret_1 in note for note in notes(done))
    record = ModerationAction.objects.get()
    assert (record.action, record.target_type, record.target_id, record.reason, record.extra) == (
        "app_key_rotate",
        "app",
        app.public_id,
        "quarterly rotation",
        {"slot": 1},
    )


def test_revocations_from_the_admin_are_recorded(admin_for, staff, make_app, bus_sent):  # noqa: F811
    web = admin_for(staff)
    app = make_app()
    user, _ = tenancy.external_user_upsert(app=app, external_id="u1")
    issued = tenancy.id_handle_issue(app=app, external_id="u1")
    web.post(APPS, action("revoke_tokens", app, reason="leaked secret"))
    web.post("/admin/accounts/user/", action("revoke_tenant_tokens", user, reason="stolen phone"))
    web.post("/admin/accounts/idhandle/", action("revoke_handles", issued.handle, reason="handed over"))
    app.refresh_from_db()
    user.refresh_from_db()
    assert app.tokens_revoked_before and user.tokens_revoked_before
    assert IdHandle.objects.get(pk=issued.handle.pk).revoked_at
    assert sorted(ModerationAction.objects.values_list("action", flat=True)) == [
        "app_tokens_revoke",
        "handle_revoke",
        "user_tokens_revoke",
    ]
    assert len([e for _g, e in bus_sent if e["type"] == "session.revoked"]) == 3
    handles_page = web.get("/admin/accounts/idhandle/").content.decode()
    assert issued.secret not in handles_page
