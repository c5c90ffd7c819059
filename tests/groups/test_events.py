"""Group events leave the services only after commit, to the right bus groups ("c.<conversation>"
for the members, "u.<user>" for the one user who joins or goes), nothing on refusal, and every
event survives JSON."""

import json

import pytest

from chatproject.core.errors import ApplicationError
from groups import services

from .conftest import create, make_admin

pytestmark = pytest.mark.django_db


@pytest.fixture
def publish(bus_sent, django_capture_on_commit_callbacks):
    """Run a service call as its own committed transaction; return what reached the bus."""

    def run(call) -> list[tuple[list[str], dict]]:
        bus_sent.clear()
        with django_capture_on_commit_callbacks(execute=True):
            call()
        for _groups, event in bus_sent:
            assert json.loads(json.dumps(event)) == event
        return list(bus_sent)

    return run


def routes(sent) -> list[tuple[frozenset[str], str]]:
    # The order of groups within one publish carries no meaning; the order of publishes does.
    return [(frozenset(groups), event["type"]) for groups, event in sent]


def c(conversation) -> frozenset[str]:
    return frozenset({f"c.{conversation.public_id}"})


def u(*chat_users) -> frozenset[str]:
    return frozenset(f"u.{m.id}" for m in chat_users)


def ref(conversation, title: str = "Team") -> dict:
    return {"id": conversation.public_id, "kind": "group", "title": title}


def test_nothing_is_published_before_commit(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        create(alice, bob)
    assert bus_sent == []
    assert len(callbacks) == 2


def test_create_announces_the_group_to_each_member_and_posts_the_system_message(publish, alice, bob, carol):
    made = []
    sent = publish(lambda: made.append(create(alice, bob, carol)))
    conversation = made[0]
    assert routes(sent) == [(c(conversation), "message.created"), (u(alice, bob, carol), "group.created")]
    assert sent[0][1]["message"]["kind"] == "system"
    assert sent[1][1] == {
        "type": "group.created",
        "actor": alice.id,
        "actor_name": "Alice",
        "conversation": ref(conversation),
        "joins": [alice.id, bob.id, carol.id],
        "seq": 0,  # every message of a new group, its first system message included, is theirs
    }


def test_rename_posts_the_system_message_and_tells_the_members(publish, team, alice):
    sent = publish(lambda: services.group_update(user=alice.user, group_id=team.public_id, name="Crew"))
    assert routes(sent) == [(c(team), "message.created"), (c(team), "group.updated")]
    assert sent[1][1] == {
        "type": "group.updated",
        "actor": alice.id,
        "actor_name": "Alice",
        "conversation": ref(team, "Crew"),
        "description": "",
        "avatar_url": "",
    }


def test_description_change_tells_the_members_without_a_system_message(publish, team, alice):
    sent = publish(lambda: services.group_update(user=alice.user, group_id=team.public_id, description="D"))
    assert routes(sent) == [(c(team), "group.updated")]
    assert sent[0][1]["description"] == "D"


def test_add_tells_the_members_and_the_new_member_who_joins_the_routing(publish, team, alice, dave):
    sent = publish(
        lambda: services.group_member_add(user=alice.user, group_id=team.public_id, member_id=dave.id)
    )
    assert routes(sent) == [
        (u(dave), "group.joined"),  # routing first, so the new member gets the system message live
        (c(team), "group.member_added"),
        (c(team), "message.created"),
    ]
    assert sent[1][1]["subject"] == dave.id
    assert sent[1][1]["subject_name"] == "Dave"
    assert sent[0][1]["joins"] == [dave.id]
    # The last message before Dave (the group's creation): the system message about him is his.
    assert sent[0][1]["seq"] == 1 and sent[2][1]["message"]["seq"] == 2


@pytest.mark.parametrize("how", ["kicked", "left"])
def test_departure_tells_the_members_then_the_one_who_goes(publish, team, alice, bob, how):
    if how == "kicked":
        sent = publish(
            lambda: services.group_member_remove(user=alice.user, group_id=team.public_id, member_id=bob.id)
        )
        actor = alice
    else:
        sent = publish(lambda: services.group_leave(user=bob.user, group_id=team.public_id))
        actor = bob
    # The system message goes first, while the departing member's connections still get it.
    assert routes(sent) == [
        (c(team), "message.created"),
        (c(team), "group.member_removed"),
        (u(bob), "group.removed"),
    ]
    for _groups, event in sent[1:]:
        assert (event["actor"], event["subject"], event["reason"], event["leaves"]) == (
            actor.id,
            bob.id,
            how,
            [bob.id],
        )


@pytest.mark.parametrize("change", ["grant", "revoke", "hand over"])
def test_admin_change_posts_the_system_message_and_tells_the_members(publish, team, alice, bob, change):
    if change == "revoke":
        make_admin(team, alice, bob)
    kwargs = {"grant": {}, "revoke": {"make_admin": False}, "hand over": {"hand_over": True}}[change]
    sent = publish(
        lambda: services.group_admin_change(
            user=alice.user, group_id=team.public_id, member_id=bob.id, **kwargs
        )
    )
    if change == "hand over":  # the caller steps down (no message of its own), then the handover
        assert routes(sent) == [
            (c(team), "group.admin_changed"),
            (c(team), "message.created"),
            (c(team), "group.admin_changed"),
        ]
        assert (sent[0][1]["subject"], sent[0][1]["role"]) == (alice.id, "member")
        sent = sent[1:]
    else:
        assert routes(sent) == [(c(team), "message.created"), (c(team), "group.admin_changed")]
    role = {"grant": "admin", "revoke": "member", "hand over": "owner"}[change]
    assert (sent[1][1]["subject"], sent[1][1]["role"], sent[1][1]["handed_over"]) == (
        bob.id,
        role,
        change == "hand over",
    )


def test_delete_tells_the_members_that_everyone_leaves(publish, team, alice):
    sent = publish(lambda: services.group_delete(user=alice.user, group_id=team.public_id))
    assert routes(sent) == [(c(team), "group.deleted")]
    assert sent[0][1]["leaves_all"] is True
    assert sent[0][1]["conversation"] == ref(team)


def test_ownership_passing_on_leave_is_announced(publish, team, alice, bob):
    make_admin(team, alice, bob)
    sent = publish(lambda: services.group_leave(user=alice.user, group_id=team.public_id))
    assert (c(team), "group.admin_changed") in routes(sent)


@pytest.mark.parametrize(
    "refusal",
    [
        "create with an unknown member",
        "update by a non-member",
        "update with a bad avatar after a rename",
        "add an existing member",
        "add by a member",
        "kick the owner",
        "kick oneself",
        "last admin leaves",
        "revoke the owner",
        "delete by a member",
    ],
)
def test_nothing_is_published_on_refusal(
    team, alice, bob, dave, bus_sent, django_capture_on_commit_callbacks, refusal
):
    gid = team.public_id
    calls = {
        "create with an unknown member": lambda: services.group_create(
            user=alice.user, name="T", member_ids=["0" * 24]
        ),
        "update by a non-member": lambda: services.group_update(user=dave.user, group_id=gid, name="X"),
        # The rename's system message is written before the avatar is refused: both roll back.
        "update with a bad avatar after a rename": lambda: services.group_update(
            user=alice.user, group_id=gid, name="X", avatar_url="ftp://x"
        ),
        "add an existing member": lambda: services.group_member_add(
            user=alice.user, group_id=gid, member_id=bob.id
        ),
        "add by a member": lambda: services.group_member_add(user=bob.user, group_id=gid, member_id=dave.id),
        "kick the owner": lambda: services.group_member_remove(
            user=bob.user, group_id=gid, member_id=alice.id
        ),
        "kick oneself": lambda: services.group_member_remove(
            user=alice.user, group_id=gid, member_id=alice.id
        ),
        "last admin leaves": lambda: services.group_leave(user=alice.user, group_id=gid),
        "revoke the owner": lambda: services.group_admin_change(
            user=alice.user, group_id=gid, member_id=alice.id, make_admin=False
        ),
        "delete by a member": lambda: services.group_delete(user=bob.user, group_id=gid),
    }
    bus_sent.clear()
    # The caller catches the refusal and its own transaction commits: whatever the service
    # queued before refusing must have been dropped with its rolled-back work.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ApplicationError):
            calls[refusal]()
    assert callbacks == []
    assert bus_sent == []
