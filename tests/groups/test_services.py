"""Every rule of the groups services, allowed and refused (events are in test_events.py)."""

import pytest

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from groups import selectors, services
from groups.models import Group
from messaging import selectors as msg_selectors
from messaging import services as msg_services
from messaging.models import Conversation, Membership, Message

from .conftest import create, make_admin, membership, role, roles, system_texts

pytestmark = pytest.mark.django_db


def refused(code: ErrorCode, call, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(**kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value


def snapshot() -> tuple:
    """Everything a refused call must leave as it was."""
    return (
        list(Conversation.objects.values_list("public_id", "title", "last_seq").order_by("pk")),
        list(Group.objects.values_list("description", "avatar_url").order_by("pk")),
        list(Membership.objects.values_list("user_id", "role", "left_at", "left_seq").order_by("pk")),
        list(Message.objects.values_list("seq", "kind", "content").order_by("pk")),
    )


@pytest.fixture
def unchanged():
    """Asserts, after the test, that nothing was written."""
    before = snapshot()
    yield
    assert snapshot() == before


def limit(settings, value: int) -> None:
    settings.CHAT = {**settings.CHAT, "GROUP_MAX_MEMBERS": value}


def send(chat_user, conversation, content: str = "hello") -> Message:
    message, _created = msg_services.message_send(
        user=chat_user.user, conversation_id=conversation.public_id, content=content
    )
    return message


def unverified() -> User:
    return User.objects.create_user("unverified@example.com", "correct horse 42", display_name="Unverified")


def banned(chat_user) -> None:
    chat_user.user.is_banned = True
    chat_user.user.save(update_fields=["is_banned"])


# --- group_create ----------------------------------------------------------------------------


def test_create_makes_the_caller_owner_and_the_others_members(alice, bob, carol):
    conversation = create(
        alice, bob, carol, name="  Team  ", description="Our team", avatar_url="/media/a.png"
    )
    assert (conversation.kind, conversation.title) == (Conversation.Kind.GROUP, "Team")
    group = Group.objects.get(conversation=conversation)
    assert (group.description, group.avatar_url, group.created_by) == (
        "Our team",
        "/media/a.png",
        alice.user,
    )
    assert roles(conversation) == {"Alice": "owner", "Bob": "member", "Carol": "member"}
    assert system_texts(conversation) == ["Alice created the group"]


def test_create_without_other_members_makes_a_group_of_one(alice):
    conversation = services.group_create(user=alice.user, name="Solo")
    assert roles(conversation) == {"Alice": "owner"}
    assert Group.objects.get(conversation=conversation).description == ""


def test_create_ignores_the_creator_and_duplicates_in_member_ids(alice, bob):
    conversation = services.group_create(
        user=alice.user, name="Team", member_ids=[alice.id, bob.id, bob.id, alice.id]
    )
    assert roles(conversation) == {"Alice": "owner", "Bob": "member"}


@pytest.mark.parametrize("name", ["", "   ", None, 12, ["Team"], "x" * 101], ids=repr)
def test_create_refuses_a_missing_blank_non_string_or_too_long_name(alice, unchanged, name):
    error = refused(ErrorCode.INVALID, services.group_create, user=alice.user, name=name)
    assert error.extra == {"field": "name"}


def test_create_accepts_a_name_of_the_maximum_length(alice):
    assert services.group_create(user=alice.user, name="x" * 100).title == "x" * 100


@pytest.mark.parametrize("description", ["x" * 1001, 12, ["x"], {"a": 1}], ids=repr)
def test_create_refuses_a_non_string_or_too_long_description(alice, unchanged, description):
    error = refused(
        ErrorCode.INVALID, services.group_create, user=alice.user, name="Team", description=description
    )
    assert error.extra == {"field": "description"}


@pytest.mark.parametrize(
    "avatar_url",
    ["not a url", "ftp://example.com/a.png", "javascript:alert(1)", "https://" + "a" * 500 + ".com", 12],
    ids=["not-a-url", "ftp", "javascript", "too-long", "number"],
)
def test_create_refuses_an_avatar_that_is_not_an_http_url(alice, unchanged, avatar_url):
    error = refused(
        ErrorCode.INVALID, services.group_create, user=alice.user, name="Team", avatar_url=avatar_url
    )
    assert error.extra == {"field": "avatar_url"}


@pytest.mark.parametrize("member", ["unknown", "malformed", "unverified", "banned", "inactive"])
def test_create_refuses_members_who_cannot_chat_as_not_found(alice, bob, member):
    if member == "unknown":
        bad = new_public_id()
    elif member == "malformed":
        bad = "not-an-id"
    elif member == "unverified":
        bad = unverified().public_id
    else:
        field = "is_banned" if member == "banned" else "is_active"
        setattr(bob.user, field, member == "banned")
        bob.user.save(update_fields=[field])
        bad = bob.id
    before = snapshot()
    error = refused(
        ErrorCode.NOT_FOUND, services.group_create, user=alice.user, name="Team", member_ids=[bad]
    )
    assert error.extra == {"field": "member_ids", "ids": [bad]}
    assert snapshot() == before


def test_create_refuses_a_member_list_with_a_non_string(alice, bob, unchanged):
    error = refused(
        ErrorCode.INVALID, services.group_create, user=alice.user, name="Team", member_ids=[bob.id, 1]
    )
    assert error.extra == {"field": "member_ids"}


@pytest.mark.parametrize("member_ids", ["abc", 5], ids=repr)
def test_create_refuses_member_ids_that_are_not_a_list_as_invalid(alice, member_ids):
    error = refused(
        ErrorCode.INVALID, services.group_create, user=alice.user, name="Team", member_ids=member_ids
    )
    assert error.extra == {"field": "member_ids"}


@pytest.mark.parametrize("field", ["name", "description"])
def test_create_refuses_text_that_cannot_be_stored(alice, field):
    kwargs = {"name": "Team", field: "bad \ud800 text"}
    error = refused(ErrorCode.INVALID, services.group_create, user=alice.user, **kwargs)
    assert error.extra == {"field": field}


def test_create_allows_up_to_the_member_limit_counting_the_creator(settings, alice, bob, carol):
    limit(settings, 3)
    conversation = create(alice, bob, carol)
    assert len(roles(conversation)) == 3
    # Naming oneself among the members does not count twice.
    again = services.group_create(user=alice.user, name="T", member_ids=[alice.id, bob.id, carol.id])
    assert len(roles(again)) == 3


def test_create_refuses_more_members_than_the_limit(settings, alice, bob, carol, dave, unchanged):
    limit(settings, 3)
    error = refused(
        ErrorCode.INVALID,
        services.group_create,
        user=alice.user,
        name="Team",
        member_ids=[bob.id, carol.id, dave.id],
    )
    assert error.extra == {"field": "member_ids"}


# --- group_update ----------------------------------------------------------------------------


def test_owner_renames_the_group_and_the_rename_is_in_the_history(team, alice):
    services.group_update(user=alice.user, group_id=team.public_id, name=" Dream team ")
    team.refresh_from_db()
    assert team.title == "Dream team"
    assert system_texts(team)[-1] == 'Alice renamed the group to "Dream team"'


def test_admin_changes_description_and_avatar_without_a_system_message(team, alice, bob):
    make_admin(team, alice, bob)
    texts = system_texts(team)
    services.group_update(
        user=bob.user, group_id=team.public_id, description="New", avatar_url="/media/b.png"
    )
    group = Group.objects.get(conversation=team)
    assert (group.description, group.avatar_url) == ("New", "/media/b.png")
    assert system_texts(team) == texts


def test_update_with_an_empty_avatar_removes_it(alice):
    conversation = services.group_create(user=alice.user, name="T", avatar_url="/media/a.png")
    services.group_update(user=alice.user, group_id=conversation.public_id, avatar_url="")
    assert Group.objects.get(conversation=conversation).avatar_url == ""


def test_update_to_the_same_name_writes_no_system_message(team, alice):
    services.group_update(user=alice.user, group_id=team.public_id, name="Team")
    assert system_texts(team) == ["Alice created the group"]


def test_member_who_is_not_an_admin_cannot_update(team, bob, unchanged):
    refused(
        ErrorCode.PERMISSION_DENIED, services.group_update, user=bob.user, group_id=team.public_id, name="X"
    )


def test_non_member_cannot_update_and_learns_nothing(team, dave, unchanged):
    error = refused(
        ErrorCode.NOT_FOUND, services.group_update, user=dave.user, group_id=team.public_id, name="X"
    )
    unknown = refused(
        ErrorCode.NOT_FOUND, services.group_update, user=dave.user, group_id=new_public_id(), name="X"
    )
    assert error.as_dict() == unknown.as_dict()


def test_update_refuses_an_invalid_name_and_changes_nothing(team, alice, unchanged):
    refused(ErrorCode.INVALID, services.group_update, user=alice.user, group_id=team.public_id, name=" ")


def test_update_refuses_an_invalid_avatar_after_a_valid_rename_and_keeps_the_old_name(team, alice, unchanged):
    refused(
        ErrorCode.INVALID,
        services.group_update,
        user=alice.user,
        group_id=team.public_id,
        name="New name",
        avatar_url="ftp://x",
    )


def test_direct_conversation_is_not_a_group(alice, bob):
    direct, _partner, _created = msg_services.direct_conversation_get_or_create(
        user=alice.user, other_user_id=bob.id
    )
    before = snapshot()
    refused(ErrorCode.NOT_FOUND, services.group_update, user=alice.user, group_id=direct.public_id, name="X")
    refused(ErrorCode.NOT_FOUND, services.group_leave, user=alice.user, group_id=direct.public_id)
    assert snapshot() == before


# --- group_member_add ------------------------------------------------------------------------


def test_admin_adds_a_member_and_it_is_in_the_history(team, alice, dave):
    added = services.group_member_add(user=alice.user, group_id=team.public_id, member_id=dave.id)
    assert (added.user, added.role, added.left_at) == (dave.user, "member", None)
    assert role(team, dave) == "member"
    assert system_texts(team)[-1] == "Alice added Dave"


def test_added_member_can_read_and_send(team, alice, dave):
    services.group_member_add(user=alice.user, group_id=team.public_id, member_id=dave.id)
    send(dave, team, "hi all")
    _conversation, messages = msg_selectors.message_history(user=dave.user, conversation_id=team.public_id)
    assert messages[0].content == "hi all"


def test_non_owner_admin_can_add(team, alice, bob, dave):
    make_admin(team, alice, bob)
    services.group_member_add(user=bob.user, group_id=team.public_id, member_id=dave.id)
    assert role(team, dave) == "member"


def test_member_who_is_not_an_admin_cannot_add(team, bob, dave, unchanged):
    error = refused(
        ErrorCode.PERMISSION_DENIED,
        services.group_member_add,
        user=bob.user,
        group_id=team.public_id,
        member_id=dave.id,
    )
    assert error.message == "Only group admins can do that."


def test_non_member_cannot_add(team, dave, unchanged):
    refused(
        ErrorCode.NOT_FOUND,
        services.group_member_add,
        user=dave.user,
        group_id=team.public_id,
        member_id=dave.id,
    )


def test_adding_a_current_member_is_a_conflict(team, alice, bob, unchanged):
    error = refused(
        ErrorCode.CONFLICT,
        services.group_member_add,
        user=alice.user,
        group_id=team.public_id,
        member_id=bob.id,
    )
    assert (error.message, error.extra) == ("Already in Group", {"member": bob.id})


@pytest.mark.parametrize("who", ["unknown", "malformed", "unverified", "banned"])
def test_adding_someone_who_cannot_chat_is_not_found(team, alice, dave, who):
    if who == "banned":
        banned(dave)
    member_id = {
        "unknown": new_public_id(),
        "malformed": "nope",
        "unverified": unverified().public_id,
        "banned": dave.id,
    }[who]
    before = snapshot()
    refused(
        ErrorCode.NOT_FOUND,
        services.group_member_add,
        user=alice.user,
        group_id=team.public_id,
        member_id=member_id,
    )
    assert snapshot() == before


def test_former_member_rejoins_with_the_same_row_reset(team, alice, bob):
    make_admin(team, alice, bob)
    services.group_admin_change(user=alice.user, group_id=team.public_id, member_id=bob.id, make_admin=False)
    make_admin(team, alice, bob)
    services.group_member_remove(user=alice.user, group_id=team.public_id, member_id=bob.id)
    old = membership(team, bob)
    assert old.left_at is not None and old.left_seq is not None
    services.group_member_add(user=alice.user, group_id=team.public_id, member_id=bob.id)
    new = membership(team, bob)
    assert new.pk == old.pk
    assert (new.left_at, new.left_seq, new.role) == (None, None, "member")  # an admin comes back a member
    assert new.joined_at > old.joined_at
    send(bob, team, "back")


def test_adding_to_a_full_group_is_a_conflict(settings, team, alice, dave, unchanged):
    limit(settings, 3)
    error = refused(
        ErrorCode.CONFLICT,
        services.group_member_add,
        user=alice.user,
        group_id=team.public_id,
        member_id=dave.id,
    )
    assert error.extra == {"limit": 3}


def test_a_place_freed_by_leaving_can_be_taken(settings, team, alice, bob, dave):
    limit(settings, 3)
    services.group_leave(user=bob.user, group_id=team.public_id)
    services.group_member_add(user=alice.user, group_id=team.public_id, member_id=dave.id)
    assert set(roles(team)) == {"Alice", "Carol", "Dave"}


def test_admin_demoted_while_waiting_for_the_group_lock_cannot_add(monkeypatch, team, alice, bob, dave):
    make_admin(team, alice, bob)
    locked = services._locked

    def demoted_meanwhile(conversation):
        # Alice's demotion of Bob commits between Bob's authorisation and his lock.
        Membership.objects.filter(conversation=team, user=bob.user).update(role=Membership.Role.MEMBER)
        return locked(conversation)

    monkeypatch.setattr(services, "_locked", demoted_meanwhile)
    refused(
        ErrorCode.PERMISSION_DENIED,
        services.group_member_add,
        user=bob.user,
        group_id=team.public_id,
        member_id=dave.id,
    )


# --- group_member_remove (kick) --------------------------------------------------------------


def test_admin_kicks_a_member_who_keeps_history_up_to_the_kick(team, alice, bob):
    send(bob, team, "before")
    services.group_member_remove(user=alice.user, group_id=team.public_id, member_id=bob.id)
    gone = membership(team, bob)
    removal = Message.objects.get(conversation=team, content="Alice removed Bob")
    assert removal.kind == Message.Kind.SYSTEM
    assert gone.left_at is not None
    assert gone.left_seq == removal.seq
    send(alice, team, "after")
    _conversation, messages = msg_selectors.message_history(user=bob.user, conversation_id=team.public_id)
    assert [m.content for m in messages] == ["Alice removed Bob", "before", "Alice created the group"]
    page = msg_selectors.message_page(user=bob.user, conversation_id=team.public_id, after=0)
    assert page.messages[-1].seq == removal.seq


def test_kicked_member_cannot_send_mark_read_or_open_the_group(team, alice, bob):
    services.group_member_remove(user=alice.user, group_id=team.public_id, member_id=bob.id)
    refused(ErrorCode.NOT_FOUND, send, chat_user=bob, conversation=team)
    refused(
        ErrorCode.NOT_FOUND,
        msg_services.conversation_mark_read,
        user=bob.user,
        conversation_id=team.public_id,
    )
    refused(ErrorCode.NOT_FOUND, selectors.group_page, user=bob.user, group_id=team.public_id)
    assert selectors.group_list_for_user(user=bob.user) == []
    assert Message.objects.filter(conversation=team, sender=bob.user, kind="text").count() == 0


def test_admin_can_kick_another_admin(team, alice, bob, carol):
    make_admin(team, alice, bob)
    make_admin(team, alice, carol)
    services.group_member_remove(user=bob.user, group_id=team.public_id, member_id=carol.id)
    assert role(team, carol) is None


def test_member_who_is_not_an_admin_cannot_kick(team, bob, carol, unchanged):
    refused(
        ErrorCode.PERMISSION_DENIED,
        services.group_member_remove,
        user=bob.user,
        group_id=team.public_id,
        member_id=carol.id,
    )


def test_nobody_kicks_the_owner(team, alice, bob):
    make_admin(team, alice, bob)
    before = snapshot()
    error = refused(
        ErrorCode.PERMISSION_DENIED,
        services.group_member_remove,
        user=bob.user,
        group_id=team.public_id,
        member_id=alice.id,
    )
    assert error.message == "The group's owner cannot be removed."
    assert snapshot() == before


def test_admin_cannot_kick_themselves(team, alice, unchanged):
    error = refused(
        ErrorCode.INVALID,
        services.group_member_remove,
        user=alice.user,
        group_id=team.public_id,
        member_id=alice.id,
    )
    assert "Leave" in error.message


@pytest.mark.parametrize("target", ["never a member", "already left", "unknown"])
def test_kicking_someone_not_in_the_group_is_not_found(team, alice, bob, dave, target):
    if target == "already left":
        services.group_leave(user=bob.user, group_id=team.public_id)
    member_id = {"never a member": dave.id, "already left": bob.id, "unknown": new_public_id()}[target]
    before = snapshot()
    refused(
        ErrorCode.NOT_FOUND,
        services.group_member_remove,
        user=alice.user,
        group_id=team.public_id,
        member_id=member_id,
    )
    assert snapshot() == before


def test_admin_can_kick_a_member_who_was_banned(team, alice, bob):
    banned(bob)
    services.group_member_remove(user=alice.user, group_id=team.public_id, member_id=bob.id)
    assert role(team, bob) is None


# --- group_leave -----------------------------------------------------------------------------


def test_member_leaves_and_it_is_in_the_history(team, bob):
    services.group_leave(user=bob.user, group_id=team.public_id)
    gone = membership(team, bob)
    assert gone.left_seq == Message.objects.get(conversation=team, content="Bob left").seq
    assert set(roles(team)) == {"Alice", "Carol"}


def test_last_admin_cannot_leave_while_others_remain(team, alice, unchanged):
    error = refused(ErrorCode.CONFLICT, services.group_leave, user=alice.user, group_id=team.public_id)
    assert (error.message, error.extra) == ("Make New Admin before Leaving", {"reason": "last_admin"})


def test_admin_leaves_when_the_owner_remains(team, alice, bob):
    make_admin(team, alice, bob)
    services.group_leave(user=bob.user, group_id=team.public_id)
    assert roles(team) == {"Alice": "owner", "Carol": "member"}


def test_owner_leaving_passes_ownership_to_the_longest_serving_admin(team, alice, carol, dave):
    services.group_member_add(user=alice.user, group_id=team.public_id, member_id=dave.id)
    # Dave is promoted first, but Carol has been in the group longer.
    make_admin(team, alice, dave)
    make_admin(team, alice, carol)
    services.group_leave(user=alice.user, group_id=team.public_id)
    assert roles(team) == {"Bob": "member", "Carol": "owner", "Dave": "admin"}
    assert system_texts(team)[-1] == "Alice left"


def test_owner_alone_can_leave(alice):
    conversation = services.group_create(user=alice.user, name="Solo")
    services.group_leave(user=alice.user, group_id=conversation.public_id)
    assert roles(conversation) == {}


def test_last_admin_can_leave_once_the_others_are_gone(team, alice, bob, carol):
    services.group_leave(user=bob.user, group_id=team.public_id)
    services.group_member_remove(user=alice.user, group_id=team.public_id, member_id=carol.id)
    services.group_leave(user=alice.user, group_id=team.public_id)
    assert roles(team) == {}


@pytest.mark.parametrize("who", ["never a member", "already left"])
def test_leaving_a_group_one_is_not_in_is_not_found(team, bob, dave, who):
    if who == "already left":
        services.group_leave(user=bob.user, group_id=team.public_id)
    before = snapshot()
    user = dave.user if who == "never a member" else bob.user
    refused(ErrorCode.NOT_FOUND, services.group_leave, user=user, group_id=team.public_id)
    assert snapshot() == before


# --- group_admin_change ----------------------------------------------------------------------


def test_owner_makes_a_member_admin_who_can_then_add(team, alice, bob, dave):
    changed = services.group_admin_change(user=alice.user, group_id=team.public_id, member_id=bob.id)
    assert (changed.user_id, changed.role) == (bob.user.pk, "admin")
    assert system_texts(team)[-1] == "Alice made Bob an admin"
    services.group_member_add(user=bob.user, group_id=team.public_id, member_id=dave.id)


def test_making_an_admin_admin_again_is_a_conflict(team, alice, bob):
    make_admin(team, alice, bob)
    before = snapshot()
    refused(
        ErrorCode.CONFLICT,
        services.group_admin_change,
        user=alice.user,
        group_id=team.public_id,
        member_id=bob.id,
    )
    refused(
        ErrorCode.CONFLICT,
        services.group_admin_change,
        user=bob.user,
        group_id=team.public_id,
        member_id=alice.id,
    )
    assert snapshot() == before


def test_member_who_is_not_an_admin_cannot_grant_or_revoke(team, alice, bob, carol):
    make_admin(team, alice, carol)
    before = snapshot()
    for make in (True, False):
        refused(
            ErrorCode.PERMISSION_DENIED,
            services.group_admin_change,
            user=bob.user,
            group_id=team.public_id,
            member_id=carol.id,
            make_admin=make,
        )
    assert snapshot() == before


def test_admin_revokes_another_admin(team, alice, bob, carol):
    make_admin(team, alice, bob)
    make_admin(team, alice, carol)
    changed = services.group_admin_change(
        user=bob.user, group_id=team.public_id, member_id=carol.id, make_admin=False
    )
    assert changed.role == "member"
    assert system_texts(team)[-1] == "Bob removed Carol as admin"


def test_revoking_a_plain_member_is_a_conflict(team, alice, bob, unchanged):
    error = refused(
        ErrorCode.CONFLICT,
        services.group_admin_change,
        user=alice.user,
        group_id=team.public_id,
        member_id=bob.id,
        make_admin=False,
    )
    assert error.message == "Not an admin."


def test_owner_cannot_be_revoked_even_by_themselves(team, alice, bob):
    make_admin(team, alice, bob)
    before = snapshot()
    for by in (alice, bob):
        refused(
            ErrorCode.PERMISSION_DENIED,
            services.group_admin_change,
            user=by.user,
            group_id=team.public_id,
            member_id=alice.id,
            make_admin=False,
        )
    assert snapshot() == before


@pytest.mark.parametrize("target", ["never a member", "already left"])
def test_changing_the_role_of_someone_not_in_the_group_is_not_found(team, alice, bob, dave, target):
    if target == "already left":
        services.group_leave(user=bob.user, group_id=team.public_id)
    before = snapshot()
    refused(
        ErrorCode.NOT_FOUND,
        services.group_admin_change,
        user=alice.user,
        group_id=team.public_id,
        member_id=dave.id if target == "never a member" else bob.id,
    )
    assert snapshot() == before


def test_owner_hand_over_passes_ownership_and_steps_down(team, alice, bob):
    changed = services.group_admin_change(
        user=alice.user, group_id=team.public_id, member_id=bob.id, hand_over=True
    )
    assert changed.role == "owner"
    assert roles(team) == {"Alice": "member", "Bob": "owner", "Carol": "member"}
    assert system_texts(team)[-1] == "Alice handed admin rights to Bob"
    # Now an ordinary member, Alice may leave; Bob may not.
    services.group_leave(user=alice.user, group_id=team.public_id)
    refused(ErrorCode.CONFLICT, services.group_leave, user=bob.user, group_id=team.public_id)


def test_admin_hand_over_passes_admin_rights_and_keeps_the_owner(team, alice, bob, carol):
    make_admin(team, alice, bob)
    services.group_admin_change(user=bob.user, group_id=team.public_id, member_id=carol.id, hand_over=True)
    assert roles(team) == {"Alice": "owner", "Bob": "member", "Carol": "admin"}


def test_hand_over_to_oneself_is_invalid(team, alice, unchanged):
    refused(
        ErrorCode.INVALID,
        services.group_admin_change,
        user=alice.user,
        group_id=team.public_id,
        member_id=alice.id,
        hand_over=True,
    )


def test_admin_hand_over_to_the_owner_keeps_the_owner(team, alice, bob):
    make_admin(team, alice, bob)
    try:
        services.group_admin_change(
            user=bob.user, group_id=team.public_id, member_id=alice.id, hand_over=True
        )
    except ApplicationError:
        pass  # refusing is as good as keeping the owner
    assert role(team, alice) == "owner"


# --- group_delete ----------------------------------------------------------------------------


def test_owner_deletes_the_group_with_its_history(team, alice, bob):
    send(bob, team)
    assert services.group_delete(user=alice.user, group_id=team.public_id) == team.public_id
    assert not Conversation.objects.filter(pk=team.pk).exists()
    assert not Membership.objects.filter(conversation_id=team.pk).exists()
    assert not Message.objects.filter(conversation_id=team.pk).exists()
    assert not Group.objects.filter(conversation_id=team.pk).exists()
    refused(ErrorCode.NOT_FOUND, msg_selectors.message_history, user=bob.user, conversation_id=team.public_id)


def test_non_owner_admin_can_delete(team, alice, bob):
    make_admin(team, alice, bob)
    services.group_delete(user=bob.user, group_id=team.public_id)
    assert not Conversation.objects.filter(pk=team.pk).exists()


def test_member_who_is_not_an_admin_cannot_delete(team, bob, unchanged):
    refused(ErrorCode.PERMISSION_DENIED, services.group_delete, user=bob.user, group_id=team.public_id)


def test_non_member_cannot_delete(team, dave, unchanged):
    refused(ErrorCode.NOT_FOUND, services.group_delete, user=dave.user, group_id=team.public_id)


# --- the history of membership changes -------------------------------------------------------


def test_every_membership_change_is_a_system_message_by_its_actor(team, alice, bob, carol, dave):
    gid = team.public_id
    services.group_update(user=alice.user, group_id=gid, name="Crew")
    services.group_member_add(user=alice.user, group_id=gid, member_id=dave.id)
    services.group_admin_change(user=alice.user, group_id=gid, member_id=bob.id)
    services.group_admin_change(user=bob.user, group_id=gid, member_id=bob.id, make_admin=False)
    services.group_member_remove(user=alice.user, group_id=gid, member_id=carol.id)
    services.group_admin_change(user=alice.user, group_id=gid, member_id=dave.id, hand_over=True)
    services.group_leave(user=alice.user, group_id=gid)
    rows = list(
        Message.objects.filter(conversation=team)
        .order_by("seq")
        .values_list("seq", "kind", "sender", "content")
    )
    assert [(seq, kind) for seq, kind, _sender, _content in rows] == [(i, "system") for i in range(1, 9)]
    assert [(sender, content) for _seq, _kind, sender, content in rows] == [
        (alice.user.pk, "Alice created the group"),
        (alice.user.pk, 'Alice renamed the group to "Crew"'),
        (alice.user.pk, "Alice added Dave"),
        (alice.user.pk, "Alice made Bob an admin"),
        (bob.user.pk, "Bob removed Bob as admin"),
        (alice.user.pk, "Alice removed Carol"),
        (alice.user.pk, "Alice handed admin rights to Dave"),
        (alice.user.pk, "Alice left"),
    ]
    assert roles(team) == {"Bob": "member", "Dave": "owner"}


def test_joined_at_orders_members_in_the_member_list(team, alice, dave):
    services.group_member_add(user=alice.user, group_id=team.public_id, member_id=dave.id)
    members = selectors.group_members(conversation=team)
    assert [(m.name, m.role) for m in members] == [
        ("Alice", "owner"),
        ("Bob", "member"),
        ("Carol", "member"),
        ("Dave", "member"),
    ]
