"""The groups admin: groups can be found and looked at; the one action goes through the service."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import User
from groups import services
from groups.models import Group
from messaging.models import Conversation

from .conftest import create

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/groups/group/"


@pytest.fixture
def moderator(db) -> User:
    return User.objects.create_superuser("mod@example.com", "correct horse 42", display_name="Mod")


@pytest.fixture
def admin_web(moderator) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


@pytest.fixture
def groups(alice, bob, carol):
    team = create(alice, bob, carol, name="Team", description="The team")
    services.group_leave(user=carol.user, group_id=team.public_id)
    other = create(bob, name="Book club")
    return team, other


def test_list_shows_name_id_description_and_current_member_count(admin_web, groups):
    team, _other = groups
    response = admin_web.get(CHANGELIST)
    assert response.status_code == 200
    rows = {g.conversation.public_id: g for g in response.context["cl"].result_list}
    assert rows[team.public_id]._members == 2  # Carol left
    html = response.content.decode()
    assert "Team" in html and team.public_id in html and "The team" in html


@pytest.mark.parametrize(("term", "expected"), [("team", {"Team"}), ("club", {"Book club"}), ("zzz", set())])
def test_search_by_name(admin_web, groups, term, expected):
    response = admin_web.get(CHANGELIST, {"q": term})
    assert {g.conversation.title for g in response.context["cl"].result_list} == expected


def test_search_by_exact_public_id(admin_web, groups):
    team, _other = groups
    response = admin_web.get(CHANGELIST, {"q": team.public_id})
    assert [g.conversation.title for g in response.context["cl"].result_list] == ["Team"]


def test_detail_shows_members_with_roles_and_former_members(admin_web, groups):
    team, _other = groups
    group = Group.objects.get(conversation=team)
    response = admin_web.get(f"{CHANGELIST}{group.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Alice", "Owner", "Bob", "Member", "Carol", "The team"):
        assert text in html


def test_groups_are_not_added_edited_or_deleted_outside_the_services(admin_web, groups):
    team, _other = groups
    group = Group.objects.get(conversation=team)
    assert admin_web.get(f"{CHANGELIST}add/").status_code == 403
    response = admin_web.post(f"{CHANGELIST}{group.pk}/change/", {"description": "rewritten"})
    assert response.status_code == 403
    assert admin_web.post(f"{CHANGELIST}{group.pk}/delete/", {"post": "yes"}).status_code == 403
    group.refresh_from_db()
    assert group.description == "The team"
    actions = [
        name for name, _label in admin_web.get(CHANGELIST).context["action_form"].fields["action"].choices
    ]
    assert "delete_selected" not in actions
    assert "delete_groups" in actions


def test_delete_action_asks_a_reason_then_deletes_through_the_moderator_service(
    admin_web, moderator, groups, bus_sent, django_capture_on_commit_callbacks
):
    # The moderator is no admin of Team: moderation does not need it (tests/moderation/).
    team, other = groups
    data = {"action": "delete_groups", "_selected_action": [Group.objects.get(conversation=team).pk]}
    assert admin_web.post(CHANGELIST, data).status_code == 200  # the reason page
    assert Conversation.objects.filter(pk=team.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_web.post(CHANGELIST, data | {"apply": "yes", "reason": "Spam ring"})
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=team.pk).exists()
    assert Conversation.objects.filter(pk=other.pk).exists()
    assert "Deleted 1 group(s)." in [str(m) for m in get_messages(response.wsgi_request)]
    assert [(groups_, event["type"]) for groups_, event in bus_sent] == [
        ([f"c.{team.public_id}"], "group.deleted")
    ]
