"""The tenant services CHAT SERVER stands on: token re-registration and app rooms."""

import math

import pytest

from accounts import tenancy
from accounts.models import RegisteredToken
from chatproject.core.errors import ApplicationError
from tenants import rooms
from tenants.services import tenant_user_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def app():
    return tenancy.app_create(name="Acme")


def test_reregistering_a_different_token_revokes_the_old_session_only(
    app, bus_sent, django_capture_on_commit_callbacks
):
    user, created = tenant_user_register(app=app, external_id="1", first_name="Ann", token="first-token")
    assert created
    old = RegisteredToken.objects.get(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        tenant_user_register(app=app, external_id="1", first_name="Ann", token="first-token")  # same token
    assert [e for _g, e in bus_sent if e["type"] == "session.revoked"] == []
    old = RegisteredToken.objects.get(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        tenant_user_register(app=app, external_id="1", first_name="Ann", token="second-token")
    revoked = [e for _g, e in bus_sent if e["type"] == "session.revoked"]
    assert [(e["user_id"], e["sid"]) for e in revoked] == [
        (user.public_id, f"r:{math.ceil(old.created_at.timestamp())}")
    ]


def test_bad_token_stores_nothing(app):
    with pytest.raises(ApplicationError):
        tenant_user_register(app=app, external_id="2", first_name="Bo", token="short")
    assert not app.users.exists()


def test_room_names_are_per_app_and_members_must_be_registered(app):
    other = tenancy.app_create(name="Other")
    for a in (app, other):
        tenant_user_register(app=a, external_id="1", first_name="A")
    rooms.app_room_create(app=app, name="lobby", user_ids=[1])
    rooms.app_room_create(app=other, name="lobby", user_ids=["1"])
    with pytest.raises(ApplicationError) as conflict:
        rooms.app_room_create(app=app, name="lobby", user_ids=[1])
    assert conflict.value.message == "Room Already Exists"
    with pytest.raises(ApplicationError) as missing:
        rooms.app_room_create(app=app, name="x", user_ids=[1, 3, True])
    assert missing.value.code == "invalid"
    for bad in ("", "x" * 101, None, 5):
        with pytest.raises(ApplicationError):
            rooms.app_room_create(app=app, name=bad, user_ids=[1])
    with pytest.raises(ApplicationError):
        rooms.app_room_create(app=app, name="big", user_ids=[1], extra={"k": "x" * 5000})


def test_removed_member_is_not_found_for_join_and_page(app):
    for uid in ("1", "2"):
        tenant_user_register(app=app, external_id=uid, first_name="U")
    room = rooms.app_room_create(app=app, name="team", user_ids=["1", "2"])
    member = app.users.get(external_id="2")
    assert rooms.app_room_for_member(user=member, name="team") == room
    rooms.app_room_members_remove(app=app, name="team", user_ids=["2"])
    with pytest.raises(ApplicationError):
        rooms.app_room_for_member(user=member, name="team")
    with pytest.raises(ApplicationError):
        rooms.app_room_page(user=member, room=room)
    assert [u.external_id for u in rooms.app_room_members(room=room)] == ["1"]


def test_page_bounds(app):
    tenant_user_register(app=app, external_id="1", first_name="U")
    room = rooms.app_room_create(app=app, name="r", user_ids=["1"])
    owner = app.users.get(external_id="1")
    for page, limit, expected in ((None, None, 20), (-3, -1, 20), (1, 10**9, 100), (2, 5, 5)):
        result = rooms.app_room_page(user=owner, room=room, page=page, limit=limit)
        assert result.limit == expected and result.messages == []  # only the system message exists
    assert rooms.app_room_page(user=owner, room=room, page=10**6, limit=100).messages == []


def test_deactivating_a_user_revokes_everything_and_keeps_them_out(
    app, bus_sent, django_capture_on_commit_callbacks
):
    user, _ = tenant_user_register(app=app, external_id="1", first_name="Ann", token="ann-token-1")
    other_app = tenancy.app_create(name="Other")
    with pytest.raises(ApplicationError) as other:
        tenancy.external_user_deactivate(app=other_app, user_id=user.public_id)
    assert other.value.code == "not_found"
    with django_capture_on_commit_callbacks(execute=True):
        gone = tenancy.external_user_deactivate(app=app, user_id=user.public_id)
    assert not gone.is_active and gone.tokens_revoked_before is not None
    assert not RegisteredToken.objects.filter(user=user).exists()
    assert [(e["user_id"], e["sid"]) for _g, e in bus_sent if e["type"] == "session.revoked"] == [
        (user.public_id, None)
    ]
    for again in (
        lambda: tenancy.external_user_deactivate(app=app, user_id=user.public_id),
        lambda: tenant_user_register(app=app, external_id="1", first_name="Ann", token="ann-token-2"),
    ):
        with pytest.raises(ApplicationError) as error:
            again()
        assert error.value.code == "not_found"
    assert not RegisteredToken.objects.filter(user=user).exists()  # the re-registration stored nothing
