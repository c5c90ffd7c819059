"""Moderation in the admin, through the real admin views with a logged-in staff user: each
action asks for a reason first, runs the moderation service, and shows up in the log."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from accounts.models import ModerationAction, User
from groups.models import Group
from messaging.models import Conversation, Membership, Message

from .conftest import send, staff_make

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/messaging/message/"
USERS = "/admin/accounts/user/"
GROUPS = "/admin/groups/group/"
LOG = "/admin/accounts/moderationaction/"


def notes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def action(name: str, *objects, reason: str | None = None) -> dict:
    data = {"action": name, "_selected_action": [obj.pk for obj in objects]}
    if reason is not None:
        data |= {"apply": "yes", "reason": reason}
    return data


def action_names(client, url: str) -> set[str]:
    form = client.get(url).context["action_form"]  # None when no action is allowed
    return {name for name, _label in form.fields["action"].choices} if form else set()


# --- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field"), [("hide_messages", "hidden_at"), ("delete_messages", "deleted_at")]
)
def test_message_actions_ask_a_reason_then_moderate(admin_for, moderator, alice, chat, bus_sent, name, field):
    web = admin_for(moderator)
    message = send(alice, chat, "rude words")
    page = web.post(MESSAGES, action(name, message))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="reason"' in html and message.public_id in html
    # The reason page posts the same action and selection back.
    assert f'name="_selected_action" value="{message.pk}"' in html
    assert f'name="action" value="{name}"' in html
    blank = web.post(MESSAGES, action(name, message, reason="  "))
    assert blank.status_code == 200 and b"This field is required." in blank.content
    assert getattr(Message.objects.get(pk=message.pk), field) is None
    assert not ModerationAction.objects.exists() and bus_sent == []

    done = web.post(MESSAGES, action(name, message, reason="Insults"))
    assert done.status_code == 302
    assert notes(done) == [f"{'Hidden' if name == 'hide_messages' else 'Deleted'} 1 message(s)."]
    assert getattr(Message.objects.get(pk=message.pk), field) is not None
    record = ModerationAction.objects.get()
    assert (record.moderator, record.target_id, record.reason) == (moderator, message.public_id, "Insults")
    assert [event["type"] for _groups, event in bus_sent] == [
        "message.hidden" if name == "hide_messages" else "message.deleted"
    ]


def test_refusals_are_reported_per_message(admin_for, moderator, alice, chat):
    web = admin_for(moderator)
    deleted, fine = send(alice, chat, "one"), send(alice, chat, "two")
    web.post(MESSAGES, action("delete_messages", deleted, reason="Spam"), follow=True)
    response = web.post(MESSAGES, action("delete_messages", deleted, fine, reason="Spam"))
    assert notes(response) == [
        f"{deleted.public_id} (#1 in {chat.public_id}): The message is already deleted.",
        "Deleted 1 message(s).",
    ]
    assert ModerationAction.objects.count() == 2


def test_staff_without_the_permission_gets_no_message_actions(admin_for, alice, chat):
    viewer = staff_make("viewer@example.com", "messaging.view_message")
    web = admin_for(viewer)
    message = send(alice, chat, "rude")
    assert not action_names(web, MESSAGES) & {"hide_messages", "delete_messages"}
    web.post(MESSAGES, action("delete_messages", message, reason="Spam"))
    assert Message.objects.get(pk=message.pk).content == "rude"
    assert not ModerationAction.objects.exists()


def test_messages_are_found_by_conversation_sender_and_day_and_filtered_by_status(
    admin_for, moderator, alice, bob, chat
):
    web = admin_for(moderator)
    old, new = send(alice, chat, "old"), send(bob, chat, "new")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    web.post(MESSAGES, action("hide_messages", new, reason="Spam"))

    def found(**query) -> set[str]:
        response = web.get(MESSAGES, query)
        assert response.status_code == 200
        return {m.public_id for m in response.context["cl"].result_list}

    assert found(q=chat.public_id) == {old.public_id, new.public_id}
    assert found(q=alice.user.email) == {old.public_id}
    assert found(q=(timezone.localdate() - timedelta(days=3)).isoformat()) == {old.public_id}
    assert found(q=timezone.localdate().isoformat()) == {new.public_id}
    assert found(hidden_at__isempty="0") == {new.public_id}
    assert found(hidden_at__isempty="1") == {old.public_id}
    assert "hidden" in web.get(MESSAGES).content.decode()  # the status column


# --- users ----------------------------------------------------------------------------------


def test_ban_and_unban_ask_a_reason_and_are_recorded(admin_for, moderator, alice, bus_sent):
    web = admin_for(moderator)
    user = alice.user
    page = web.post(USERS, action("ban_users", user))
    assert page.status_code == 200 and b'name="reason"' in page.content
    assert not User.objects.get(pk=user.pk).is_banned
    assert notes(web.post(USERS, action("ban_users", user, reason="Spam"))) == ["Banned 1 user(s)."]
    assert User.objects.get(pk=user.pk).ban_reason == "Spam"
    assert [event["type"] for _groups, event in bus_sent] == ["session.revoked"]
    web.post(USERS, action("unban_users", user, reason="Appeal accepted"))
    assert not User.objects.get(pk=user.pk).is_banned
    assert list(ModerationAction.objects.order_by("pk").values_list("action", "reason")) == [
        ("user_ban", "Spam"),
        ("user_unban", "Appeal accepted"),
    ]


# --- groups ---------------------------------------------------------------------------------


def member_url(team: Conversation, chat_user, what: str) -> str:
    return f"{GROUPS}{Group.objects.get(conversation=team).pk}/members/{chat_user.id}/{what}/"


def test_group_page_lists_members_with_moderation_links(admin_for, moderator, bob, team):
    group = Group.objects.get(conversation=team)
    html = admin_for(moderator).get(f"{GROUPS}{group.pk}/change/").content.decode()
    assert member_url(team, bob, "remove") in html and member_url(team, bob, "role") in html


def test_remove_member_page_asks_a_reason_then_removes(admin_for, moderator, bob, team, bus_sent):
    web = admin_for(moderator)
    url = member_url(team, bob, "remove")
    page = web.get(url)
    assert page.status_code == 200 and b"Bob" in page.content
    assert web.post(url, {"reason": ""}).status_code == 200
    assert Membership.objects.get(conversation=team, user=bob.user).left_at is None
    response = web.post(url, {"reason": "Harassment"})
    assert response.status_code == 302
    assert response["Location"] == f"{GROUPS}{Group.objects.get(conversation=team).pk}/change/"
    assert Membership.objects.get(conversation=team, user=bob.user).left_at is not None
    assert ModerationAction.objects.get().action == "group_member_remove"
    assert "group.removed" in [event["type"] for _groups, event in bus_sent]
    assert web.get(url).status_code == 404  # no longer a current member


def test_removing_the_owner_shows_why_on_the_page(admin_for, moderator, alice, team):
    response = admin_for(moderator).post(member_url(team, alice, "remove"), {"reason": "Spam"})
    assert response.status_code == 200
    assert "make another member the owner first" in response.content.decode()
    assert not ModerationAction.objects.exists()


def test_role_page_moves_ownership(admin_for, moderator, carol, team):
    web = admin_for(moderator)
    url = member_url(team, carol, "role")
    assert b'name="role"' in web.get(url).content
    response = web.post(url, {"role": "owner", "reason": "The owner left the company"})
    assert response.status_code == 302
    assert dict(Membership.objects.filter(conversation=team).values_list("user__display_name", "role")) == {
        "Alice": "admin",
        "Bob": "member",
        "Carol": "owner",
    }
    assert ModerationAction.objects.get().extra["to"] == "owner"


def test_member_pages_need_the_change_permission(admin_for, bob, team):
    web = admin_for(staff_make("viewer@example.com", "groups.view_group"))
    assert web.get(member_url(team, bob, "remove")).status_code == 403
    assert web.post(member_url(team, bob, "role"), {"role": "admin", "reason": "x"}).status_code == 403
    assert Membership.objects.get(conversation=team, user=bob.user).role == "member"


def test_group_delete_action_asks_a_reason_and_is_recorded(admin_for, moderator, team):
    web = admin_for(moderator)
    group = Group.objects.get(conversation=team)
    assert web.post(GROUPS, action("delete_groups", group)).status_code == 200
    assert Conversation.objects.filter(pk=team.pk).exists()
    assert notes(web.post(GROUPS, action("delete_groups", group, reason="Spam ring"))) == [
        "Deleted 1 group(s)."
    ]
    assert not Conversation.objects.filter(pk=team.pk).exists()
    assert ModerationAction.objects.get().target_id == team.public_id


# --- the log --------------------------------------------------------------------------------


def test_the_log_lists_searches_and_filters_and_is_read_only(admin_for, moderator, alice, bob, chat, team):
    web = admin_for(moderator)
    message = send(alice, chat, "rude")
    web.post(MESSAGES, action("delete_messages", message, reason="Insults"))
    web.post(member_url(team, bob, "remove"), {"reason": "Harassment"})

    def listed(**query) -> list[tuple[str, str]]:
        response = web.get(LOG, query)
        assert response.status_code == 200
        return [(r.action, r.reason) for r in response.context["cl"].result_list]

    assert listed() == [("group_member_remove", "Harassment"), ("message_delete", "Insults")]
    page = web.get(LOG).content.decode()
    assert moderator.email in page and message.public_id in page
    assert listed(q=message.public_id) == [("message_delete", "Insults")]
    assert listed(q="harass") == [("group_member_remove", "Harassment")]
    assert len(listed(q=moderator.email)) == 2
    assert listed(action__exact="message_delete") == [("message_delete", "Insults")]
    record = ModerationAction.objects.get(action="message_delete")
    assert web.get(f"{LOG}{record.pk}/change/").status_code == 200
    assert web.get(f"{LOG}add/").status_code == 403
    assert web.post(f"{LOG}{record.pk}/change/", {"reason": "rewritten"}).status_code == 403
    assert web.post(f"{LOG}{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in action_names(web, LOG)
    assert ModerationAction.objects.get(pk=record.pk).reason == "Insults"
