"""Username-and-password users of a tenant app (accounts.app_logins): hashed, backed off,
answered with handles, at most CHAT APP_LOGIN_HANDLES_MAX live."""

import pytest

from accounts import app_logins, tenancy
from accounts.identity import APPS, ID_HANDLE, Policy, Presented, identity_resolve
from accounts.models import IdHandle, User
from chatproject.core.errors import ApplicationError, ErrorCode

pytestmark = pytest.mark.django_db
PASSWORD = "a long password 1"


@pytest.fixture
def app(db):
    return tenancy.app_create(name="Private chat")


def test_register_then_login_gives_a_handle_the_resolver_takes(app):
    user = app_logins.app_user_register(app=app, username="alice", password=PASSWORD)
    assert (user.external_id, user.display_name, user.email) == ("alice", "alice", None)
    assert user.password != PASSWORD and user.check_password(PASSWORD)
    issued = app_logins.app_user_login(app=app, username="alice", password=PASSWORD)
    policy = Policy(realm=APPS, forms=(ID_HANDLE,), apps=(app.public_id,))
    assert identity_resolve(policy=policy, presented=Presented(handle=issued.secret)).user == user


def test_usernames_are_unique_per_app_and_exact(app):
    app_logins.app_user_register(app=app, username="alice", password=PASSWORD)
    with pytest.raises(ApplicationError) as taken:
        app_logins.app_user_register(app=app, username="alice", password=PASSWORD)
    assert taken.value.code == ErrorCode.CONFLICT
    app_logins.app_user_register(app=app, username="Alice", password=PASSWORD)  # case-sensitive
    other = tenancy.app_create(name="Other")
    app_logins.app_user_register(app=other, username="alice", password=PASSWORD)
    assert User.objects.filter(external_id="alice").count() == 2


def test_wrong_passwords_back_off(app, settings):
    settings.CHAT = {**settings.CHAT, "LOGIN_FAILURES_FREE": 2}
    app_logins.app_user_register(app=app, username="alice", password=PASSWORD)
    for _ in range(2):
        with pytest.raises(ApplicationError) as wrong:
            app_logins.app_user_login(app=app, username="alice", password="nope")
        assert wrong.value.code == ErrorCode.AUTHENTICATION_FAILED
    with pytest.raises(ApplicationError) as waiting:
        app_logins.app_user_login(app=app, username="alice", password=PASSWORD)
    assert waiting.value.code == ErrorCode.THROTTLED
    assert not IdHandle.objects.exists()


@pytest.mark.parametrize("who", ["banned", "token-user", "nobody"])
def test_who_cannot_log_in(app, who):
    if who == "banned":
        user = app_logins.app_user_register(app=app, username="banned", password=PASSWORD)
        user.is_banned = True
        user.save(update_fields=["is_banned"])
    elif who == "token-user":  # made by the tenant's tokens: no password
        tenancy.external_user_upsert(app=app, external_id="token-user")
    with pytest.raises(ApplicationError) as refused:
        app_logins.app_user_login(app=app, username=who, password=PASSWORD)
    assert refused.value.code == ErrorCode.AUTHENTICATION_FAILED
    assert not IdHandle.objects.exists()


def test_old_handles_are_revoked_past_the_limit(app, settings):
    settings.CHAT = {**settings.CHAT, "APP_LOGIN_HANDLES_MAX": 2}
    app_logins.app_user_register(app=app, username="alice", password=PASSWORD)
    issued = [app_logins.app_user_login(app=app, username="alice", password=PASSWORD) for _ in range(3)]
    live = set(IdHandle.objects.filter(revoked_at__isnull=True).values_list("public_id", flat=True))
    assert live == {issued[1].handle.public_id, issued[2].handle.public_id}
