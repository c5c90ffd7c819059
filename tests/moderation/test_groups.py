"""Moderating groups: a staff moderator removes members, sets roles and deletes groups without
being a group admin, keeps the group's invariants (one owner while it has members), leaves the
same system messages and events as the normal paths, and every action is recorded."""

import pytest

from accounts.models import ModerationAction
from chatproject.core.errors import ApplicationError, ErrorCode
from groups import services
from messaging.models import Conversation, Membership, Message

from .conftest import staff_make

pytestmark = pytest.mark.django_db


def remove(moderator, team, member, reason: object = "Harassment") -> Membership:
    return services.group_member_remove_as_moderator(
        moderator=moderator, group_id=team.public_id, member_id=member.id, reason=reason
    )


def set_role(moderator, team, member, role: object, reason: object = "Asked by the owner") -> Membership:
    return services.group_role_set_as_moderator(
        moderator=moderator, group_id=team.public_id, member_id=member.id, role=role, reason=reason
    )


def refused(code: ErrorCode, call) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call()
    assert caught.value.code == code
    return caught.value


def roles(conversation: Conversation) -> dict[str, str]:
    return dict(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
            "user__display_name", "role"
        )
    )


def last_system_message(conversation: Conversation) -> Message:
    return Message.objects.filter(conversation=conversation, kind=Message.Kind.SYSTEM).latest("seq")


def routes(bus_sent) -> list[tuple[frozenset[str], str]]:
    return [(frozenset(groups), event["type"]) for groups, event in bus_sent]


# --- who may --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "permissions"),
    [("member", None), ("staff", ("groups.view_group",)), ("staff", ("groups.delete_group",))],
)
def test_only_staff_with_the_change_permission_remove_or_set_roles(who, permissions, alice, bob, team):
    moderator = alice.user if who == "member" else staff_make("s@example.com", *permissions)
    refused(ErrorCode.PERMISSION_DENIED, lambda: remove(moderator, team, bob))
    refused(ErrorCode.PERMISSION_DENIED, lambda: set_role(moderator, team, bob, "admin"))
    assert roles(team) == {"Alice": "owner", "Bob": "member", "Carol": "member"}
    assert not ModerationAction.objects.exists()


def test_only_staff_with_the_delete_permission_delete(alice, team):
    for moderator in (alice.user, staff_make("s@example.com", "groups.change_group")):
        refused(
            ErrorCode.PERMISSION_DENIED,
            lambda m=moderator: services.group_delete_as_moderator(
                moderator=m, group_id=team.public_id, reason="Spam"
            ),
        )
    assert Conversation.objects.filter(pk=team.pk).exists()


def test_a_superuser_moderates_too(bob, team):
    remove(staff_make("root@example.com", superuser=True), team, bob)
    assert "Bob" not in roles(team)


@pytest.mark.parametrize("reason", ["", "  ", None, "x" * 501])
def test_a_reason_is_required(moderator, bob, team, reason):
    refused(ErrorCode.INVALID, lambda: remove(moderator, team, bob, reason))
    refused(ErrorCode.INVALID, lambda: set_role(moderator, team, bob, "admin", reason))
    assert roles(team)["Bob"] == "member"


def test_unknown_group_and_non_members_are_not_found(moderator, alice, bob, team, make_user):
    stranger = make_user("Stranger")
    refused(ErrorCode.NOT_FOUND, lambda: remove(moderator, team, stranger))
    refused(ErrorCode.NOT_FOUND, lambda: set_role(moderator, team, stranger, "admin"))
    direct = Conversation.objects.create(kind=Conversation.Kind.DIRECT, unique_key="direct:x")
    for group_id in ("0" * 24, "bad id", direct.public_id):
        refused(
            ErrorCode.NOT_FOUND,
            lambda g=group_id: services.group_member_remove_as_moderator(
                moderator=moderator, group_id=g, member_id=bob.id, reason="Spam"
            ),
        )


# --- removing members -----------------------------------------------------------------------


def test_remove_is_a_kick_with_a_senderless_system_message_and_a_record(
    moderator, bob, team, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        remove(moderator, team, bob, "Harassment of Carol")
    assert roles(team) == {"Alice": "owner", "Carol": "member"}
    gone = Membership.objects.get(conversation=team, user=bob.user)
    message = last_system_message(team)
    assert (message.content, message.sender, gone.left_seq) == ("A moderator removed Bob", None, message.seq)
    c, u = frozenset({f"c.{team.public_id}"}), frozenset({f"u.{bob.id}"})
    assert routes(bus_sent) == [(c, "message.created"), (c, "group.member_removed"), (u, "group.removed")]
    removed = bus_sent[1][1]
    assert (removed["subject"], removed["reason"], removed["leaves"]) == (bob.id, "kicked", [bob.id])
    record = ModerationAction.objects.get()
    assert (record.moderator, record.action, record.target_type) == (
        moderator,
        "group_member_remove",
        "group",
    )
    assert (record.target_id, record.reason) == (team.public_id, "Harassment of Carol")
    assert record.extra == {"title": "Team", "member_id": bob.id, "role": "member"}


def test_the_owner_is_removed_only_after_ownership_moved(moderator, alice, bob, team):
    error = refused(ErrorCode.CONFLICT, lambda: remove(moderator, team, alice))
    assert "owner" in error.message
    assert roles(team)["Alice"] == "owner"
    set_role(moderator, team, bob, "owner")
    remove(moderator, team, alice)
    assert roles(team) == {"Bob": "owner", "Carol": "member"}


def test_an_admin_can_be_removed_and_leaves_as_a_member(moderator, alice, bob, team):
    set_role(moderator, team, bob, "admin")
    remove(moderator, team, bob)
    assert Membership.objects.get(conversation=team, user=bob.user).role == "member"
    assert ModerationAction.objects.filter(action="group_member_remove").get().extra["role"] == "admin"


def test_a_removed_member_can_be_removed_only_once(moderator, bob, team):
    remove(moderator, team, bob)
    refused(ErrorCode.NOT_FOUND, lambda: remove(moderator, team, bob))
    assert ModerationAction.objects.count() == 1


# --- roles ----------------------------------------------------------------------------------


def test_make_admin_and_back_announced_like_the_admins_path(
    moderator, bob, team, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        set_role(moderator, team, bob, "admin")
    assert roles(team)["Bob"] == "admin"
    assert last_system_message(team).content == "A moderator made Bob an admin"
    assert [event["type"] for _g, event in bus_sent] == ["message.created", "group.admin_changed"]
    assert (bus_sent[1][1]["subject"], bus_sent[1][1]["role"]) == (bob.id, "admin")
    set_role(moderator, team, bob, "member")
    assert roles(team)["Bob"] == "member"
    assert last_system_message(team).content == "A moderator removed Bob as admin"
    assert list(ModerationAction.objects.order_by("pk").values_list("extra", flat=True)) == [
        {"title": "Team", "member_id": bob.id, "from": "member", "to": "admin"},
        {"title": "Team", "member_id": bob.id, "from": "admin", "to": "member"},
    ]


def test_making_an_owner_moves_ownership_and_keeps_one_owner(
    moderator, alice, carol, team, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        set_role(moderator, team, carol, "owner")
    assert roles(team) == {"Alice": "admin", "Bob": "member", "Carol": "owner"}
    assert last_system_message(team).content == "A moderator made Carol the owner"
    changes = [(e["subject"], e["role"]) for _g, e in bus_sent if e["type"] == "group.admin_changed"]
    assert changes == [(alice.id, "admin"), (carol.id, "owner")]
    record = ModerationAction.objects.get()
    assert record.extra["previous_owner_id"] == alice.id


def test_the_owners_role_changes_only_by_moving_ownership(moderator, alice, team):
    for role in ("admin", "member"):
        refused(ErrorCode.CONFLICT, lambda r=role: set_role(moderator, team, alice, r))
    assert roles(team)["Alice"] == "owner"


def test_setting_the_current_role_or_an_unknown_role_is_refused(moderator, bob, team):
    refused(ErrorCode.CONFLICT, lambda: set_role(moderator, team, bob, "member"))
    refused(ErrorCode.INVALID, lambda: set_role(moderator, team, bob, "king"))
    assert not ModerationAction.objects.exists()


# --- deleting -------------------------------------------------------------------------------


def test_delete_removes_the_group_announces_it_and_records_it(
    moderator, team, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deleted = services.group_delete_as_moderator(
            moderator=moderator, group_id=team.public_id, reason="Spam"
        )
    assert deleted == team.public_id
    assert not Conversation.objects.filter(pk=team.pk).exists()
    assert routes(bus_sent) == [(frozenset({f"c.{team.public_id}"}), "group.deleted")]
    record = ModerationAction.objects.get()
    assert (record.action, record.target_id, record.reason) == ("group_delete", team.public_id, "Spam")
    assert record.extra == {"title": "Team", "members": 3, "last_seq": 1}


def test_nothing_is_published_before_commit(
    moderator, bob, team, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        remove(moderator, team, bob)
    assert bus_sent == [] and len(callbacks) == 3
