"""App owners (seed 003's dashboard users): first-party accounts that own apps, staff register
them. The services in accounts.tenancy, as plain functions."""

import pytest
from django.core.cache import cache

from accounts import tenancy
from accounts.models import App, User
from chatproject.core.errors import ApplicationError, ErrorCode

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def account(email: str, **fields) -> User:
    fields.setdefault("email_verified", True)
    return User.objects.create_user(email, PASSWORD, display_name="A B", **fields)


def test_app_create_records_its_owner_and_two_distinct_secrets():
    owner = account("o@example.com")
    app = tenancy.app_create(name="Shop", owner=owner)
    assert app.owner == owner and app.secret_1 and app.secret_2 and app.secret_1 != app.secret_2


def test_external_or_unusable_accounts_cannot_own_apps():
    other = tenancy.app_create(name="Other")
    external, _created = tenancy.external_user_upsert(app=other, external_id="7", name="Ext")
    unverified = account("u@example.com", email_verified=False)
    for owner in (external, unverified):
        with pytest.raises(ApplicationError) as error:
            tenancy.app_create(name="Shop", owner=owner)
        assert error.value.code == ErrorCode.PERMISSION_DENIED
    assert App.objects.count() == 1


def test_app_deactivate_only_by_owner_or_staff():
    owner, stranger, staff = (
        account("o@example.com"),
        account("s@example.com"),
        account("x@example.com", is_staff=True),
    )
    app = tenancy.app_create(name="Shop", owner=owner)
    for caller, key in ((stranger, app.public_id), (owner, "nope"), (owner, 5)):
        with pytest.raises(ApplicationError) as error:
            tenancy.app_deactivate(by=caller, app_id=key)
        assert error.value.code == ErrorCode.NOT_FOUND
    assert App.objects.get(pk=app.pk).is_active
    done = tenancy.app_deactivate(by=staff, app_id=app.public_id)
    app.refresh_from_db()
    assert not done.is_active and not app.is_active and app.tokens_revoked_before is not None
    with pytest.raises(ApplicationError):
        tenancy.app_deactivate(by=owner, app_id=app.public_id)  # already gone


def test_app_owner_register_needs_staff_and_validates_before_storing():
    staff, plain = account("x@example.com", is_staff=True), account("p@example.com")
    fields = {
        "email": "n@example.com",
        "password": PASSWORD,
        "first_name": "N",
        "middle_name": "",
        "last_name": "M",
    }
    with pytest.raises(ApplicationError) as error:
        tenancy.app_owner_register(by=plain, **fields)
    assert error.value.code == ErrorCode.PERMISSION_DENIED
    with pytest.raises(ApplicationError) as error:
        tenancy.app_owner_register(by=staff, **{**fields, "password": "short"})
    assert error.value.code == ErrorCode.INVALID
    assert not User.objects.filter(email="n@example.com").exists()
    user = tenancy.app_owner_register(by=staff, **fields)
    assert user.email_verified and user.can_chat and user.display_name == "N M"
    with pytest.raises(ApplicationError) as error:
        tenancy.app_owner_register(by=staff, **{**fields, "email": "N@Example.com"})
    assert error.value.code == ErrorCode.CONFLICT


def test_app_owner_authenticate_fails_alike_and_counts_failures():
    account("o@example.com")
    assert tenancy.app_owner_authenticate(email="O@example.com", password=PASSWORD).email == "o@example.com"
    for email, password in (("o@example.com", "wrong"), ("none@example.com", PASSWORD), (None, PASSWORD)):
        with pytest.raises(ApplicationError) as error:
            tenancy.app_owner_authenticate(email=email, password=password)
        assert error.value.code == ErrorCode.AUTHENTICATION_FAILED
