"""The private chat app's REST (spec §1.2) in process: exact statuses and shapes, handles only
for the caller, bad input changes nothing."""

import json
from urllib.parse import urlencode

import pytest
from django.core.cache import cache

import chatproject.urls  # noqa: F401 - built now, from the default registry (see urls.py)
from accounts import app_logins, friends, tenancy
from accounts.models import App, IdHandle, User
from messaging import services as msg_services
from messaging.models import Conversation

from .conftest import MOUNTS

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.protocols.privatechat.urls")]
PASSWORD = "a long password 1"


@pytest.fixture
def app(db, settings):
    settings.CHAT = {**settings.CHAT, "PROTOCOLS": MOUNTS}
    return App.objects.create(public_id=MOUNTS[0]["apps"][0], name="Private chat")


def post(client, path, body, **extra):
    return client.post(path, json.dumps(body), content_type="application/json;charset=utf-8", **extra)


def signed_in(client, username):
    post(client, "/user", {"username": username, "password": PASSWORD})
    return post(client, "/user/signin", {"username": username, "password": PASSWORD}).json()


def test_sign_up_201_without_password_and_with_form_bodies(client, app):
    response = post(client, "/user", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "_id",
        "username",
        "backgroundColor",
        "friends",
        "activeChats",
        "createdAt",
        "updatedAt",
    }
    assert PASSWORD not in response.content.decode()
    user = User.objects.get(app=app, external_id="alice")
    assert body["_id"] == user.public_id and user.check_password(PASSWORD)
    form = client.post(
        "/user/",
        urlencode({"username": "bob", "password": PASSWORD}),
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status_code == 201


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "alice", "password": PASSWORD}, 409),
        ({"username": "", "password": PASSWORD}, 400),
        ({"username": "a", "password": PASSWORD}, 400),
        ({"username": "has space", "password": PASSWORD}, 400),
        ({"username": 7, "password": PASSWORD}, 400),
        ({"username": "carol"}, 400),
        ({"username": "carol", "password": "1"}, 400),
    ],
)
def test_sign_up_refusals_change_nothing(client, app, body, status):
    post(client, "/user", {"username": "alice", "password": PASSWORD})
    response = post(client, "/user", body)
    assert response.status_code == status
    assert User.objects.filter(app=app).count() == 1


def test_sign_in_issues_a_handle_that_is_the_profile_id(client, app):
    profile = signed_in(client, "alice")
    handle = profile["_id"]
    user = User.objects.get(external_id="alice")
    assert handle != user.public_id and len(handle) >= 27
    assert IdHandle.objects.filter(user=user, revoked_at__isnull=True).count() == 1
    again = client.get(f"/user/{handle}")
    assert again.status_code == 200 and again.json()["_id"] == handle
    assert again.json()["friends"] == [] and again.json()["activeChats"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "nope"},
        {"username": "nobody", "password": PASSWORD},
        {},
        {"username": ["alice"], "password": PASSWORD},
    ],
)
def test_sign_in_refused_with_the_original_body(client, app, body):
    post(client, "/user", {"username": "alice", "password": PASSWORD})
    response = post(client, "/user/signin", body)
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "Wrong username/password"}
    assert not IdHandle.objects.exists()


def test_profile_by_public_id_or_garbage_reveals_nothing(client, app):
    signed_in(client, "alice")
    user = User.objects.get(external_id="alice")
    for value in (user.public_id, "x" * 27, "search2"):
        response = client.get(f"/user/{value}")
        assert response.status_code == 404 and response.json() == {"message": "user not found"}


def test_profile_lists_friends_and_active_rooms_with_public_ids(client, app):
    alice = signed_in(client, "alice")
    signed_in(client, "bob")
    a, b = User.objects.get(external_id="alice"), User.objects.get(external_id="bob")
    friends.friend_add(user=a, friend_id=b.public_id)
    conversation, _, _ = msg_services.direct_conversation_get_or_create(user=a, other_user_id=b.public_id)
    body = client.get(f"/user/{alice['_id']}").json()
    assert body["friends"] == [
        {"_id": b.public_id, "username": "bob", "backgroundColor": body["friends"][0]["backgroundColor"]}
    ]
    (room,) = body["activeChats"]
    assert room["_id"] == conversation.public_id and room["roomType"] == "PRIVATE"
    assert room["lastMessage"] == {"createdAt": room["lastMessage"]["createdAt"]}  # never null
    # Bob did not open it and nothing was sent: not in his list yet.
    bob_handle = tenancy.id_handle_issue(app=app, external_id="bob").secret
    assert client.get(f"/user/{bob_handle}").json()["activeChats"] == []


def test_search_literal_text_excludes_self_and_friends_always_an_array(client, app):
    alice = signed_in(client, "alice")
    for name in ("bob", "bobby", "carol"):
        signed_in(client, name)
    a = User.objects.get(external_id="alice")
    friends.friend_add(user=a, friend_id=User.objects.get(external_id="bobby").public_id)
    found = client.get(f"/user/search?q=BOB&userId={alice['_id']}")
    assert found.status_code == 200 and [u["username"] for u in found.json()] == ["bob"]
    assert (
        "_id" in found.json()[0] and found.json()[0]["_id"] == User.objects.get(external_id="bob").public_id
    )
    for query in ("(", ".*", "[", "a" * 500, ""):
        response = client.get("/user/search", {"q": query, "userId": alice["_id"]})
        assert response.status_code == 200 and isinstance(response.json(), list)
    assert client.get("/user/search?q=(&userId=x").json() == []
    assert client.get(f"/user/search?q=bob&userId={a.public_id}").json() == []


def test_collection_wiping_routes_are_not_served(client, app):
    signed_in(client, "alice")
    for path in ("/user", "/room", "/message"):
        assert client.delete(path).status_code in (404, 405)
    assert client.post("/message", {}).status_code == 404
    assert client.post("/room", {}).status_code == 404
    assert User.objects.filter(app=app).count() == 1


def test_handles_of_another_app_name_nobody(client, app):
    other = tenancy.app_create(name="Other")
    stranger = app_logins.app_user_register(app=other, username="alice", password=PASSWORD)
    handle = tenancy.id_handle_issue(app=other, external_id=stranger.external_id).secret
    assert client.get(f"/user/{handle}").status_code == 404
    assert client.get(f"/user/search?q=a&userId={handle}").json() == []


def test_each_host_bound_mount_gets_its_own_user_routes_first(client, app, settings):
    """CHAT SERVER (seed 003) also has POST /user at the root: requests for each protocol's own
    host resolve its routes first."""
    chatserver = {
        "protocol": "gateway.protocols.chatserver",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
        "host": "localhost",
        "realm": "apps",
        "credentials": ["registered_token"],
    }
    settings.CHAT = {**settings.CHAT, "PROTOCOLS": [chatserver, *MOUNTS]}
    body = {"username": "alice", "password": PASSWORD}
    ours = post(client, "/user", body, HTTP_HOST="127.0.0.1:3000")
    assert ours.status_code == 201 and ours.json()["username"] == "alice"
    assert client.get("/", HTTP_HOST="127.0.0.1:3000").json() == {
        "text": "welcome to real time chat service!!"
    }
    theirs = post(client, "/user", {**body, "username": "bob"}, HTTP_HOST="localhost")
    assert theirs.status_code == 401  # CHAT SERVER's route: the app's secret is required
    assert not User.objects.filter(external_id="bob").exists()


def test_a_direct_conversation_without_the_partner_is_not_listed(client, app):
    """A direct conversation can have one member (a chat request not accepted yet): the app's
    screens need the other participant, so it is left out."""
    from messaging.models import Conversation, Membership

    alice = signed_in(client, "alice")
    signed_in(client, "bob")
    a, b = User.objects.get(external_id="alice"), User.objects.get(external_id="bob")
    lonely = Conversation.objects.create(
        kind=Conversation.Kind.DIRECT, unique_key="direct:test:1", created_by=a
    )
    Membership.objects.create(conversation=lonely, user=a)
    assert client.get(f"/user/{alice['_id']}").json()["activeChats"] == []
    Membership.objects.create(conversation=lonely, user=b)
    assert [r["_id"] for r in client.get(f"/user/{alice['_id']}").json()["activeChats"]] == [lonely.public_id]


def test_an_inactive_app_or_one_not_allowed_this_protocol_serves_nothing(client, app):
    app.allowed_protocols = ["expresschat"]
    app.save(update_fields=["allowed_protocols"])
    assert post(client, "/user", {"username": "alice", "password": PASSWORD}).status_code == 404
    app.allowed_protocols, app.is_active = [], False
    app.save(update_fields=["allowed_protocols", "is_active"])
    assert post(client, "/user", {"username": "alice", "password": PASSWORD}).status_code == 404
    assert post(client, "/user/signin", {"username": "alice", "password": PASSWORD}).status_code == 404
    assert not User.objects.filter(app=app).exists()


def test_search_is_capped_and_profile_and_search_take_fixed_queries(
    client, app, settings, django_assert_max_num_queries
):
    """However many friends, rooms and matches: a bounded answer, a fixed number of queries."""
    alice = signed_in(client, "alice")
    a = User.objects.get(external_id="alice")
    for index in range(settings.CHAT["SEARCH_MAX_RESULTS"] + 10):
        peer = app_logins.app_user_register(app=app, username=f"zed{index}", password=PASSWORD)
        if index < 6:
            friends.friend_add(user=a, friend_id=peer.public_id)
            conversation, _, _ = msg_services.direct_conversation_get_or_create(
                user=a, other_user_id=peer.public_id
            )
            msg_services.message_send(user=peer, conversation_id=conversation.public_id, content="hi")
    found = client.get(f"/user/search?q=zed&userId={alice['_id']}").json()
    assert len(found) == settings.CHAT["SEARCH_MAX_RESULTS"]
    assert not {f"zed{i}" for i in range(6)} & {u["username"] for u in found}  # friends left out
    with django_assert_max_num_queries(8):
        client.get(f"/user/search?q=zed&userId={alice['_id']}")
    with django_assert_max_num_queries(12) as many:
        body = client.get(f"/user/{alice['_id']}").json()
    assert len(body["friends"]) == 6 and len(body["activeChats"]) == 6
    # Nothing is read per friend or per room: one of each fewer costs the same queries.
    friends.friend_remove(user=a, friend_id=body["friends"][0]["_id"])
    Conversation.objects.filter(public_id=body["activeChats"][0]["_id"]).delete()
    with django_assert_max_num_queries(12) as fewer:
        body = client.get(f"/user/{alice['_id']}").json()
    assert len(body["friends"]) == 5 and len(body["activeChats"]) == 5
    assert len(fewer.captured_queries) == len(many.captured_queries)


def test_search_and_profile_are_throttled_per_address(client, app, settings):
    alice = signed_in(client, "alice")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "privatechat_lookup": "3/min",
        },
    }
    cache.clear()
    try:
        statuses = [
            client.get(f"/user/search?q=b&userId={alice['_id']}").status_code,
            client.get(f"/user/{alice['_id']}").status_code,
            client.get("/user/" + "x" * 27).status_code,
            client.get(f"/user/{alice['_id']}").status_code,
            client.get(f"/user/search?q=b&userId={alice['_id']}").status_code,
        ]
        assert statuses == [200, 200, 404, 429, 429]
        # Another address is not held back.
        assert client.get(f"/user/{alice['_id']}", REMOTE_ADDR="192.0.2.9").status_code == 200
    finally:
        cache.clear()


def test_sign_up_and_sign_in_are_throttled_per_address(client, app, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth_signup": "2/min",
            "auth_login": "2/min",
        },
    }
    cache.clear()
    try:
        signups = [
            post(client, "/user", {"username": f"user{i}", "password": PASSWORD}).status_code
            for i in range(3)
        ]
        assert signups == [201, 201, 429]
        body = {"username": "user0", "password": PASSWORD}
        signins = [post(client, "/user/signin", body).status_code for _ in range(3)]
        assert signins == [200, 200, 429]
        assert IdHandle.objects.count() == 2
    finally:
        cache.clear()
