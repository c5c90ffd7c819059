"""The groups REST API through its real endpoints, with Bearer tokens from a real login."""

import pytest
from django.core.management import call_command

from chatproject.core.ids import new_public_id
from groups.models import Group
from messaging.models import Conversation, Membership, Message

from .conftest import make_admin, roles, system_texts

pytestmark = pytest.mark.django_db


def url(conversation=None, tail: str = "") -> str:
    if conversation is None:
        return "/api/groups/"
    gid = conversation if isinstance(conversation, str) else conversation.public_id
    return f"/api/groups/{gid}/{tail}"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


def snapshot() -> tuple:
    return (
        list(Conversation.objects.values_list("public_id", "title", "last_seq").order_by("pk")),
        list(Group.objects.values_list("description", "avatar_url").order_by("pk")),
        list(Membership.objects.values_list("user_id", "role", "left_at").order_by("pk")),
        list(Message.objects.values_list("seq", "content").order_by("pk")),
    )


@pytest.fixture
def unchanged(team, bus_sent):
    """Asserts, after the test, that nothing was written or published."""
    before = snapshot()
    bus_sent.clear()
    yield
    assert snapshot() == before
    assert bus_sent == []


@pytest.fixture
def as_alice(alice, client_for):
    return client_for(alice)


@pytest.fixture
def as_bob(bob, client_for):
    return client_for(bob)


@pytest.fixture
def as_dave(dave, client_for):
    return client_for(dave)


# --- list and create -------------------------------------------------------------------------


def test_list_shows_only_my_current_groups_with_unread_counts(team, alice, bob, as_bob, as_alice):
    other = as_alice.post(url(), {"name": "Other"}, format="json").json()  # Bob is not in it
    as_alice.post(f"/api/conversations/{team.public_id}/messages/", {"content": "hi"}, format="json")
    response = as_bob.get(url())
    assert response.status_code == 200
    [entry] = response.json()["results"]
    assert set(entry) == {"id", "name", "last_message_at", "unread", "last_seq"}
    assert (entry["id"], entry["name"], entry["last_seq"], entry["unread"]) == (team.public_id, "Team", 2, 2)
    assert entry["last_message_at"].endswith("Z")
    assert {g["id"] for g in as_alice.get(url()).json()["results"]} == {team.public_id, other["id"]}
    as_bob.post(url(team, "leave/"), format="json")
    assert as_bob.get(url()).json()["results"] == []


def test_list_leaves_out_direct_and_self_chats(alice, bob, as_alice):
    as_alice.post("/api/conversations/direct/", {"user_id": bob.id}, format="json")
    assert as_alice.get(url()).json() == {"results": []}


def test_create_returns_the_new_group_and_announces_it(alice, bob, carol, as_alice, bus_sent):
    response = as_alice.post(
        url(),
        {
            "name": "Team",
            "description": "Ours",
            "avatar_url": "/media/a.png",
            "member_ids": [bob.id, carol.id],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "description",
        "avatar_url",
        "owner",
        "members",
        "my_role",
        "created_at",
    }
    assert (body["name"], body["description"], body["avatar_url"], body["my_role"]) == (
        "Team",
        "Ours",
        "/media/a.png",
        "owner",
    )
    assert body["owner"] == {"id": alice.id, "display_name": "Alice"}
    assert body["members"] == [
        {"id": alice.id, "display_name": "Alice", "role": "owner"},
        {"id": bob.id, "display_name": "Bob", "role": "member"},
        {"id": carol.id, "display_name": "Carol", "role": "member"},
    ]
    assert body["created_at"].endswith("Z")
    assert [event["type"] for _groups, event in bus_sent] == ["message.created", "group.created"]


def test_create_with_a_name_only(alice, as_alice):
    response = as_alice.post(url(), {"name": "Solo"}, format="json")
    assert response.status_code == 201
    assert response.json()["members"] == [{"id": alice.id, "display_name": "Alice", "role": "owner"}]
    assert (response.json()["description"], response.json()["avatar_url"]) == ("", "")


def test_create_with_an_unknown_member_is_404_and_stores_nothing(bob, as_alice, bus_sent):
    missing = new_public_id()
    response = as_alice.post(url(), {"name": "T", "member_ids": [bob.id, missing]}, format="json")
    assert assert_error(response, 404, "not_found")["extra"] == {"field": "member_ids", "ids": [missing]}
    assert not Conversation.objects.filter(kind="group").exists()
    assert bus_sent == []


def test_create_over_the_member_limit_is_400(settings, bob, carol, as_alice):
    settings.CHAT = {**settings.CHAT, "GROUP_MAX_MEMBERS": 2}
    response = as_alice.post(url(), {"name": "T", "member_ids": [bob.id, carol.id]}, format="json")
    assert assert_error(response, 400, "invalid")["extra"] == {"field": "member_ids"}
    assert not Conversation.objects.filter(kind="group").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "T", "description": "x" * 1001}, "description"),
        ({"name": "T", "avatar_url": "ftp://example.com/a.png"}, "avatar_url"),
    ],
    ids=["blank-name", "long-name", "long-description", "ftp-avatar"],
)
def test_create_refused_by_the_rules_is_400_naming_the_field(as_alice, body, field):
    assert assert_error(as_alice.post(url(), body, format="json"), 400, "invalid")["extra"] == {
        "field": field
    }
    assert not Conversation.objects.filter(kind="group").exists()


# --- detail, update, delete ------------------------------------------------------------------


def test_member_sees_the_group_with_their_own_role(team, alice, as_bob):
    response = as_bob.get(url(team))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["my_role"]) == (team.public_id, "Team", "member")
    assert body["owner"] == {"id": alice.id, "display_name": "Alice"}
    assert [m["display_name"] for m in body["members"]] == ["Alice", "Bob", "Carol"]


def test_owner_renames_and_the_history_shows_it(team, as_alice, as_bob, bus_sent):
    response = as_alice.patch(url(team), {"name": "Crew", "description": "New"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["description"]) == ("Crew", "New")
    assert [event["type"] for _groups, event in bus_sent] == ["message.created", "group.updated"]
    history = as_bob.get(f"/api/conversations/{team.public_id}/messages/").json()["results"]
    assert (history[0]["kind"], history[0]["content"]) == ("system", 'Alice renamed the group to "Crew"')


def test_patch_of_one_field_leaves_the_others(team, alice, as_alice):
    as_alice.patch(url(team), {"description": "D", "avatar_url": "/media/x.png"}, format="json")
    response = as_alice.patch(url(team), {"avatar_url": ""}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"], response.json()["avatar_url"]) == (
        "Team",
        "D",
        "",
    )


def test_patch_refused_by_the_rules_is_400(team, as_alice, unchanged):
    response = as_alice.patch(url(team), {"name": "X", "avatar_url": "nope"}, format="json")
    assert assert_error(response, 400, "invalid")["extra"] == {"field": "avatar_url"}


def test_admin_deletes_the_group(team, alice, bob, as_alice, as_bob, bus_sent):
    make_admin(team, alice, bob)
    bus_sent.clear()
    response = as_bob.delete(url(team))
    assert response.status_code == 204
    assert response.content == b""
    assert not Conversation.objects.filter(pk=team.pk).exists()
    assert [event["type"] for _groups, event in bus_sent] == ["group.deleted"]
    assert_error(as_alice.get(url(team)), 404, "not_found")


# --- members ---------------------------------------------------------------------------------


def test_member_lists_the_members(team, as_bob):
    response = as_bob.get(url(team, "members/"))
    assert response.status_code == 200
    assert [(m["display_name"], m["role"]) for m in response.json()["results"]] == [
        ("Alice", "owner"),
        ("Bob", "member"),
        ("Carol", "member"),
    ]


def test_admin_adds_a_member_who_can_then_post(team, dave, as_alice, client_for, bus_sent):
    response = as_alice.post(url(team, "members/"), {"user_id": dave.id}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"id": dave.id, "display_name": "Dave", "role": "member"}
    assert [event["type"] for _groups, event in bus_sent] == [
        "group.joined",
        "group.member_added",
        "message.created",
    ]
    sent = client_for(dave).post(
        f"/api/conversations/{team.public_id}/messages/", {"content": "hi"}, format="json"
    )
    assert sent.status_code == 201


def test_adding_a_current_member_is_409(team, bob, as_alice, unchanged):
    response = as_alice.post(url(team, "members/"), {"user_id": bob.id}, format="json")
    body = assert_error(response, 409, "conflict")
    assert (body["message"], body["extra"]) == ("Already in Group", {"member": bob.id})


def test_adding_to_a_full_group_is_409(settings, team, dave, as_alice, unchanged):
    settings.CHAT = {**settings.CHAT, "GROUP_MAX_MEMBERS": 3}
    response = as_alice.post(url(team, "members/"), {"user_id": dave.id}, format="json")
    assert assert_error(response, 409, "conflict")["extra"] == {"limit": 3}


def test_adding_an_unknown_user_is_404(team, as_alice, unchanged):
    response = as_alice.post(url(team, "members/"), {"user_id": new_public_id()}, format="json")
    assert_error(response, 404, "not_found")


def test_admin_kicks_a_member_who_keeps_the_history_up_to_then(team, alice, bob, as_alice, as_bob, bus_sent):
    response = as_alice.delete(url(team, f"members/{bob.id}/"))
    assert response.status_code == 204
    assert [event["type"] for _groups, event in bus_sent] == [
        "message.created",
        "group.member_removed",
        "group.removed",
    ]
    as_alice.post(f"/api/conversations/{team.public_id}/messages/", {"content": "secret"}, format="json")
    history = as_bob.get(f"/api/conversations/{team.public_id}/messages/").json()["results"]
    assert [m["content"] for m in history] == ["Alice removed Bob", "Alice created the group"]
    posted = as_bob.post(f"/api/conversations/{team.public_id}/messages/", {"content": "x"}, format="json")
    assert_error(posted, 404, "not_found")
    assert_error(
        as_bob.post(f"/api/conversations/{team.public_id}/read/", {}, format="json"), 404, "not_found"
    )
    assert_error(as_bob.get(url(team)), 404, "not_found")


def test_kicking_the_owner_is_403(team, alice, bob, as_bob):
    make_admin(team, alice, bob)
    before = snapshot()
    assert_error(as_bob.delete(url(team, f"members/{alice.id}/")), 403, "permission_denied")
    assert snapshot() == before


def test_kicking_oneself_is_400(team, alice, as_alice, unchanged):
    assert_error(as_alice.delete(url(team, f"members/{alice.id}/")), 400, "invalid")


@pytest.mark.parametrize("target", ["dave", "unknown", "malformed"])
def test_kicking_someone_not_in_the_group_is_404(team, dave, as_alice, unchanged, target):
    member = {"dave": dave.id, "unknown": new_public_id(), "malformed": "x"}[target]
    assert_error(as_alice.delete(url(team, f"members/{member}/")), 404, "not_found")


# --- admins ----------------------------------------------------------------------------------


def test_owner_grants_and_revokes_admin(team, bob, as_alice):
    response = as_alice.post(url(team, "admins/"), {"user_id": bob.id}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": bob.id, "display_name": "Bob", "role": "admin"}
    assert_error(as_alice.post(url(team, "admins/"), {"user_id": bob.id}, format="json"), 409, "conflict")
    assert as_alice.delete(url(team, f"admins/{bob.id}/")).status_code == 204
    assert roles(team)["Bob"] == "member"
    assert_error(as_alice.delete(url(team, f"admins/{bob.id}/")), 409, "conflict")
    assert system_texts(team)[-2:] == ["Alice made Bob an admin", "Alice removed Bob as admin"]


def test_revoking_the_owner_is_403(team, alice, bob, as_bob):
    make_admin(team, alice, bob)
    before = snapshot()
    assert_error(as_bob.delete(url(team, f"admins/{alice.id}/")), 403, "permission_denied")
    assert snapshot() == before


def test_owner_hands_over_and_can_then_leave(team, bob, as_alice):
    response = as_alice.post(url(team, "admins/handover/"), {"user_id": bob.id}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": bob.id, "display_name": "Bob", "role": "owner"}
    assert as_alice.get(url(team)).json()["my_role"] == "member"
    assert as_alice.post(url(team, "leave/")).status_code == 204


def test_hand_over_to_oneself_is_400(team, alice, as_alice, unchanged):
    response = as_alice.post(url(team, "admins/handover/"), {"user_id": alice.id}, format="json")
    assert_error(response, 400, "invalid")


def test_handover_is_not_a_user_id_for_revoking(team, as_alice, unchanged):
    assert_error(as_alice.delete(url(team, "admins/handover/")), 405, "invalid")


# --- leave -----------------------------------------------------------------------------------


def test_member_leaves(team, as_bob, bus_sent):
    response = as_bob.post(url(team, "leave/"))
    assert response.status_code == 204
    assert roles(team) == {"Alice": "owner", "Carol": "member"}
    assert [event["type"] for _groups, event in bus_sent][-1] == "group.removed"


def test_member_leaves_with_an_empty_json_object(team, as_bob):
    assert as_bob.post(url(team, "leave/"), {}, format="json").status_code == 204


def test_last_admin_leaving_is_409_last_admin(team, as_alice, unchanged):
    body = assert_error(as_alice.post(url(team, "leave/")), 409, "conflict")
    assert body["extra"] == {"reason": "last_admin"}


def test_owner_leaving_passes_ownership_to_an_admin(team, alice, carol, as_alice, client_for):
    make_admin(team, alice, carol)
    assert as_alice.post(url(team, "leave/")).status_code == 204
    assert client_for(carol).get(url(team)).json()["owner"] == {"id": carol.id, "display_name": "Carol"}


# --- who may call what -----------------------------------------------------------------------

ENDPOINTS = [
    ("get", "", None),
    ("patch", "", {"name": "X"}),
    ("delete", "", None),
    ("get", "members/", None),
    ("post", "members/", {"user_id": "TARGET"}),
    ("delete", "members/TARGET/", None),
    ("post", "admins/", {"user_id": "TARGET"}),
    ("delete", "admins/TARGET/", None),
    ("post", "admins/handover/", {"user_id": "TARGET"}),
    ("post", "leave/", None),
]
ADMIN_ONLY = [e for e in ENDPOINTS if not (e[0] == "get" or e[1] == "leave/")]


def call(client, conversation, method: str, tail: str, body, target: str):
    tail = tail.replace("TARGET", target)
    if body is not None:
        body = {k: v.replace("TARGET", target) for k, v in body.items()}
    return getattr(client, method)(url(conversation, tail), body, format="json")


def endpoint_id(endpoint) -> str:
    return f"{endpoint[0]} {'/api/groups/' if endpoint[1] is None else endpoint[1] or '{id}/'}"


@pytest.mark.parametrize(
    "endpoint", [("get", None, None), ("post", None, {"name": "T"}), *ENDPOINTS], ids=endpoint_id
)
@pytest.mark.parametrize("token", ["none", "garbage"])
def test_every_endpoint_is_401_without_a_valid_token(team, carol, client_for, unchanged, endpoint, token):
    client = client_for()
    if token == "garbage":
        client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    method, tail, body = endpoint
    if tail is None:
        response = getattr(client, method)(url(), body, format="json")
    else:
        response = call(client, team, method, tail, body, carol.id)
    assert response.status_code == 401
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}


@pytest.mark.parametrize("endpoint", ADMIN_ONLY, ids=endpoint_id)
def test_admin_endpoints_are_403_for_a_plain_member(team, carol, as_bob, unchanged, endpoint):
    method, tail, body = endpoint
    assert_error(call(as_bob, team, method, tail, body, carol.id), 403, "permission_denied")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_non_member_gets_the_same_404_as_for_an_unknown_group(team, carol, as_dave, unchanged, endpoint):
    method, tail, body = endpoint
    member = call(as_dave, team, method, tail, body, carol.id)
    unknown = call(as_dave, new_public_id(), method, tail, body, carol.id)
    malformed = call(as_dave, "not-an-id", method, tail, body, carol.id)
    assert_error(member, 404, "not_found")
    assert member.json() == unknown.json() == malformed.json()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_former_member_gets_404_like_a_stranger(team, alice, carol, as_bob, bus_sent, endpoint):
    as_bob.post(url(team, "leave/"))
    before = snapshot()
    bus_sent.clear()
    method, tail, body = endpoint
    assert_error(call(as_bob, team, method, tail, body, carol.id), 404, "not_found")
    assert snapshot() == before
    assert bus_sent == []


def test_direct_conversation_id_is_not_a_group(alice, bob, as_alice):
    direct = as_alice.post("/api/conversations/direct/", {"user_id": bob.id}, format="json").json()
    assert_error(as_alice.get(url(direct["id"])), 404, "not_found")
    assert_error(as_alice.post(url(direct["id"], "leave/")), 404, "not_found")


def test_group_shows_in_the_conversation_list_with_its_name(team, as_bob):
    entries = as_bob.get("/api/conversations/").json()["results"]
    assert [(e["kind"], e["title"]) for e in entries if e["id"] == team.public_id] == [("group", "Team")]


# --- the schema ------------------------------------------------------------------------------


def test_schema_documents_the_group_endpoints(client_for):
    paths = client_for().get("/api/schema/?format=json").json()["paths"]
    assert set(paths["/api/groups/"]) == {"get", "post"}
    assert set(paths["/api/groups/{group_id}/"]) == {"get", "patch", "delete"}
    assert set(paths["/api/groups/{group_id}/members/"]) == {"get", "post"}
    assert set(paths["/api/groups/{group_id}/members/{user_id}/"]) == {"delete"}
    assert set(paths["/api/groups/{group_id}/admins/"]) == {"post"}
    assert set(paths["/api/groups/{group_id}/admins/handover/"]) == {"post"}
    assert set(paths["/api/groups/{group_id}/admins/{user_id}/"]) == {"delete"}
    assert set(paths["/api/groups/{group_id}/leave/"]) == {"post"}


def test_schema_of_the_group_endpoints_is_valid_and_without_warnings(tmp_path):
    # Raises SystemExit on any warning or validation error.
    call_command(
        "spectacular",
        "--urlconf",
        "tests.groups.schema_urls",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
    )
    assert "/api/groups/{group_id}/members/{user_id}/" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.parametrize(
    "avatar",
    [
        "https://tracker.example/pixel.png",
        "http://127.0.0.1:9/x.png",
        "/media/../admin/",
        "//evil.example/a.png",
    ],
)
def test_a_group_avatar_must_be_an_upload_or_of_a_media_origin(alice, bob, as_alice, avatar):
    response = as_alice.post(
        url(), {"name": "T", "avatar_url": avatar, "member_ids": [bob.id]}, format="json"
    )
    assert response.status_code == 400 and response.json()["extra"]["field"] == "avatar_url"
    assert not Group.objects.filter(conversation__title="T").exists()


def test_a_group_avatar_of_a_configured_media_origin_is_kept(alice, bob, as_alice, settings):
    settings.CHAT = {**settings.CHAT, "MEDIA_ORIGINS": ["https://cdn.example.com"]}
    response = as_alice.post(
        url(),
        {"name": "T", "avatar_url": "https://cdn.example.com/g/1.png", "member_ids": [bob.id]},
        format="json",
    )
    assert response.status_code == 201 and response.json()["avatar_url"] == "https://cdn.example.com/g/1.png"
