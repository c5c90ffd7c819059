"""Friends (accounts.friends): symmetric, idempotent, one realm, events on commit, native REST."""

import pytest
from django.db import IntegrityError, transaction

from accounts import friends, tenancy
from accounts.models import Friendship
from chatproject.bus.groups import user_group
from chatproject.core.errors import ApplicationError, ErrorCode

pytestmark = pytest.mark.django_db


# The root conftest's users (ChatUser: .user, .id, tokens); this package overrides alice and bob.
@pytest.fixture
def alice(make_user):
    return make_user("Alice")


@pytest.fixture
def bob(make_user):
    return make_user("Bob")


@pytest.fixture
def carol(make_user):
    return make_user("Carol")


def _friend_events(bus_sent):
    return [(groups, e) for groups, e in bus_sent if e["type"].startswith("friend.")]


def test_add_is_mutual_and_published_to_both(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        added = friends.friend_add(user=alice.user, friend_id=bob.id)
    assert added.created and added.friend == bob.user
    assert friends.friends_of(user=alice.user) == [bob.user]
    assert friends.friends_of(user=bob.user) == [alice.user]
    ((groups, event),) = _friend_events(bus_sent)
    assert sorted(groups) == sorted([user_group(alice.id), user_group(bob.id)])
    assert event["type"] == "friend.added"
    assert (event["actor"], event["subject"]) == (alice.id, bob.id)
    assert event["friend"] == {"id": bob.id, "name": "Bob"}


def test_adding_twice_or_from_the_other_side_changes_nothing(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        friends.friend_add(user=alice.user, friend_id=bob.id)
        again = friends.friend_add(user=alice.user, friend_id=bob.id)
        reverse = friends.friend_add(user=bob.user, friend_id=alice.id)
    assert not again.created and not reverse.created
    assert Friendship.objects.count() == 2
    assert len(_friend_events(bus_sent)) == 1


def test_database_refuses_duplicates_and_self_friendship(alice, bob):
    Friendship.objects.create(user=alice.user, friend=bob.user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Friendship.objects.create(user=alice.user, friend=bob.user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Friendship.objects.create(user=alice.user, friend=alice.user)


@pytest.mark.parametrize("friend_id", [None, 12, "", "nope", "f" * 24, ["x"]])
def test_unknown_or_malformed_ids_are_not_found(alice, friend_id):
    with pytest.raises(ApplicationError) as caught:
        friends.friend_add(user=alice.user, friend_id=friend_id)
    assert caught.value.code == ErrorCode.NOT_FOUND
    assert not Friendship.objects.exists()


def test_self_is_refused(alice):
    with pytest.raises(ApplicationError) as caught:
        friends.friend_add(user=alice.user, friend_id=alice.id)
    assert caught.value.code == ErrorCode.INVALID


def test_users_of_another_realm_are_not_found(alice):
    app = tenancy.app_create(name="Other")
    stranger, _ = tenancy.external_user_upsert(app=app, external_id="stranger", name="Stranger")
    with pytest.raises(ApplicationError) as caught:
        friends.friend_add(user=alice.user, friend_id=stranger.public_id)
    assert caught.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(ApplicationError):
        friends.friend_add(user=stranger, friend_id=alice.id)


def test_banned_users_cannot_be_befriended(alice, bob):
    bob.user.is_banned = True
    bob.user.save(update_fields=["is_banned"])
    with pytest.raises(ApplicationError) as caught:
        friends.friend_add(user=alice.user, friend_id=bob.id)
    assert caught.value.code == ErrorCode.NOT_FOUND


def test_limit(alice, bob, carol, settings):
    settings.CHAT = {**settings.CHAT, "FRIENDS_MAX": 1}
    friends.friend_add(user=alice.user, friend_id=bob.id)
    with pytest.raises(ApplicationError) as caught:
        friends.friend_add(user=carol.user, friend_id=alice.id)
    assert caught.value.code == ErrorCode.CONFLICT
    assert friends.friends_of(user=carol.user) == []


def test_remove_ends_both_sides(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    friends.friend_add(user=alice.user, friend_id=bob.id)
    with django_capture_on_commit_callbacks(execute=True):
        assert friends.friend_remove(user=bob.user, friend_id=alice.id) is True
        assert friends.friend_remove(user=bob.user, friend_id=alice.id) is False
    assert not Friendship.objects.exists()
    assert [e["type"] for _, e in _friend_events(bus_sent)] == ["friend.removed"]


def test_rest_add_list_remove(client_for, alice, bob, carol):
    api = client_for(alice)
    first = api.post("/api/friends", {"user_id": bob.id}, format="json")
    assert first.status_code == 201 and first.json()["id"] == bob.id
    assert api.post("/api/friends", {"user_id": bob.id}, format="json").status_code == 200
    assert api.post("/api/friends", {"user_id": carol.id}, format="json").status_code == 201
    listed = api.get("/api/friends").json()["results"]
    assert [u["id"] for u in listed] == [bob.id, carol.id]
    assert [u["id"] for u in client_for(bob).get("/api/friends").json()["results"]] == [alice.id]
    assert api.delete(f"/api/friends/{bob.id}").status_code == 204
    assert [u["id"] for u in api.get("/api/friends").json()["results"]] == [carol.id]


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"user_id": 5}, 400), ({"user_id": "x" * 25}, 400), ({"user_id": "a" * 24}, 404)],
)
def test_rest_bad_input_changes_nothing(client_for, alice, body, status):
    response = client_for(alice).post("/api/friends", body, format="json")
    assert response.status_code == status
    assert set(response.json()) == {"code", "message", "extra"}
    assert not Friendship.objects.exists()


def test_rest_needs_a_login(api):
    assert api.get("/api/friends").status_code == 401
