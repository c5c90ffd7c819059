"""Resync: every visible change takes the conversation's next revision (gapless), every event
about a message carries it, and `conversation_changes` (socket `sync`, REST POST /api/sync/)
serves exactly what changed since a client's positions, in revision order, in current state,
bounded, and without telling a non-member anything."""

import json

import pytest

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import new_public_id
from gateway.protocols import expresschat
from groups import services as group_services
from messaging import selectors, services
from messaging.models import Conversation, Message
from messaging.services import SendRequest
from tests.moderation.conftest import MODERATOR_PERMISSIONS, staff_make

from .conftest import direct, self_chat, send

pytestmark = pytest.mark.django_db


def last_rev(conversation: Conversation) -> int:
    return Conversation.objects.values_list("last_rev", flat=True).get(pk=conversation.pk)


def revs(conversation: Conversation) -> list[int]:
    return sorted(Message.objects.filter(conversation=conversation).values_list("rev", flat=True))


def changes(user, positions, **kwargs) -> dict[str, selectors.ConversationChanges]:
    found = selectors.conversation_changes(user=user.user, positions=positions, **kwargs)
    return {c.conversation_id: c for c in found}


def one(user, conversation: Conversation, position: int, **kwargs) -> selectors.ConversationChanges:
    return changes(user, {conversation.public_id: position}, **kwargs)[conversation.public_id]


def ids(entry: selectors.ConversationChanges) -> list[str]:
    return [m.public_id for m in entry.messages]


def max_changes(settings, value: int) -> None:
    settings.CHAT = {**settings.CHAT, "SYNC_MAX_CHANGES": value}


def make_group(owner, *members) -> Conversation:
    return group_services.group_create(
        user=owner.user, name="Team", member_ids=[m.id for m in members], description=""
    )


def refused_invalid(call) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call()
    assert caught.value.code == ErrorCode.INVALID
    return caught.value


# --- revisions ------------------------------------------------------------------------------


def test_every_visible_change_takes_the_next_revision_without_gaps(alice, bob, carol):
    team = make_group(alice, bob)  # a system message: rev 1
    assert last_rev(team) == 1
    first = send(alice, team, "one")
    second = send(bob, team, "two")
    assert (first.rev, second.rev, last_rev(team)) == (2, 3, 3)

    steps = [
        lambda: services.message_edit(user=alice.user, message_id=first.public_id, content="one!"),
        lambda: services.reaction_add(user=bob.user, message_id=first.public_id, emoji="👍"),
        lambda: services.reaction_remove(user=bob.user, message_id=first.public_id, emoji="👍"),
        lambda: services.message_delete(user=bob.user, message_id=second.public_id),
        lambda: group_services.group_member_add(user=alice.user, group_id=team.public_id, member_id=carol.id),
        lambda: group_services.group_leave(user=bob.user, group_id=team.public_id),
    ]
    for expected, step in enumerate(steps, start=4):
        step()
        assert last_rev(team) == expected
    # Each message holds the revision of its latest change; no two share one.
    assert Message.objects.get(pk=first.pk).rev == 6
    assert Message.objects.get(pk=second.pk).rev == 7
    assert revs(team) == sorted(set(revs(team)))
    assert max(revs(team)) == last_rev(team) == 9


def test_changes_that_change_nothing_take_no_revision(alice, bob):
    chat = direct(alice, bob)
    message = send(alice, chat, "same")
    services.reaction_add(user=bob.user, message_id=message.public_id, emoji="👍")
    before = last_rev(chat)
    services.message_edit(user=alice.user, message_id=message.public_id, content="same")
    services.reaction_add(user=bob.user, message_id=message.public_id, emoji="👍")
    services.reaction_remove(user=bob.user, message_id=message.public_id, emoji="🎉")
    services.message_send(
        user=alice.user, conversation_id=chat.public_id, content="x", client_message_id="c1"
    )
    services.message_send(
        user=alice.user, conversation_id=chat.public_id, content="x", client_message_id="c1"
    )  # a retry: the original, no new revision
    assert last_rev(chat) == before + 1


def test_a_moderators_hide_and_delete_take_revisions(alice, bob):
    moderator = staff_make("mod@example.com", *MODERATOR_PERMISSIONS)
    chat = direct(alice, bob)
    first, second = send(alice, chat, "a"), send(alice, chat, "b")
    services.message_moderate(moderator=moderator, message_id=first.public_id, action="hide", reason="spam")
    services.message_moderate(moderator=moderator, message_id=second.public_id, action="delete", reason="x")
    assert last_rev(chat) == 4
    assert [m.public_id for m in one(bob, chat, 2).messages] == [first.public_id, second.public_id]


def test_a_batch_numbers_revisions_in_order_per_conversation(alice, bob, carol):
    ab, ac = direct(alice, bob), direct(alice, carol)
    send(alice, ab, "before")
    requests = [
        SendRequest(alice.user, ab.public_id, "1"),
        SendRequest(alice.user, ac.public_id, "2"),
        SendRequest(alice.user, ab.public_id, "3"),
        SendRequest(alice.user, ac.public_id, "4"),
    ]
    results = services.message_send_many(requests=requests)
    assert [(r.message.seq, r.message.rev) for r in results] == [(2, 2), (1, 1), (3, 3), (2, 2)]
    for conversation in (ab, ac):
        stored = Message.objects.filter(conversation=conversation).order_by("seq")
        assert [m.rev for m in stored] == [m.seq for m in stored]
        assert last_rev(conversation) == stored.last().rev


def test_every_event_about_a_message_carries_its_revision(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    chat = direct(alice, bob)
    with django_capture_on_commit_callbacks(execute=True):
        message = send(alice, chat, "hi")
        services.message_edit(user=alice.user, message_id=message.public_id, content="hello")
        services.reaction_add(user=bob.user, message_id=message.public_id, emoji="👍")
        services.reaction_remove(user=bob.user, message_id=message.public_id, emoji="👍")
        services.message_delete(user=alice.user, message_id=message.public_id)
    sent = [(e["type"], e["message"]["rev"]) for _groups, e in bus_sent if "message" in e]
    assert sent == [
        ("message.created", 1),
        ("message.edited", 2),
        ("reaction.added", 3),
        ("reaction.removed", 4),
        ("message.deleted", 5),
    ]
    created = next(e for _g, e in bus_sent if e["type"] == "message.created")
    delivered, _echo = expresschat.render(created)
    assert delivered.payload["Rev"] == 1
    rendered = [expresschat.render(e)[0].payload["Rev"] for _g, e in bus_sent if "message" in e]
    assert rendered == [1, 2, 3, 4, 5]


# --- conversation_changes -------------------------------------------------------------------


def test_changes_are_the_changed_messages_in_revision_order_in_their_current_state(alice, bob):
    chat = direct(alice, bob)
    first, second, third = (send(alice, chat, text) for text in ("one", "two", "three"))
    position = last_rev(chat)
    services.message_edit(user=alice.user, message_id=first.public_id, content="one, edited")
    services.reaction_add(user=alice.user, message_id=third.public_id, emoji="👍")
    services.message_delete(user=alice.user, message_id=second.public_id)
    services.reaction_add(user=bob.user, message_id=third.public_id, emoji="👍")
    fourth = send(bob, chat, "four")

    entry = one(bob, chat, position)
    assert ids(entry) == [first.public_id, second.public_id, third.public_id, fourth.public_id]
    assert [m.rev for m in entry.messages] == [4, 6, 7, 8]
    assert (entry.last_rev, entry.kind, entry.reload, entry.more, entry.left, entry.gone) == (
        8,
        "direct",
        False,
        False,
        False,
        False,
    )
    assert entry.messages[0].content == "one, edited" and entry.messages[0].edited_at is not None
    assert entry.messages[1].deleted_at is not None and entry.messages[1].served_content == ""
    third_reactions = entry.reactions[entry.messages[2].pk]
    assert [(r.emoji, r.count, r.mine) for r in third_reactions] == [("👍", 2, True)]
    # Nothing changed since the answer's revision.
    assert one(bob, chat, entry.last_rev).messages == []


def test_any_position_mid_stream_gets_each_change_once(alice, bob):
    chat = direct(alice, bob)
    messages = [send(alice if i % 2 else bob, chat, f"m{i}") for i in range(6)]
    services.message_edit(user=bob.user, message_id=messages[0].public_id, content="edited")
    services.reaction_add(user=alice.user, message_id=messages[3].public_id, emoji="🎉")
    services.message_delete(user=alice.user, message_id=messages[1].public_id)
    total = last_rev(chat)
    current = {m.public_id: m.rev for m in Message.objects.filter(conversation=chat)}
    for position in range(total + 1):
        entry = one(alice, chat, position)
        assert len(ids(entry)) == len(set(ids(entry)))
        assert [m.rev for m in entry.messages] == sorted(r for r in current.values() if r > position)
        assert entry.last_rev == total
        # Applying the answer to a client that was at `position` leaves nothing to fetch.
        assert one(alice, chat, entry.last_rev).messages == []


def test_payloads_match_history_payloads_of_each_kind(alice, bob):
    chat, notes = direct(alice, bob), self_chat(alice)
    team = make_group(alice, bob)
    for conversation in (chat, notes, team):
        reply_to = send(alice, conversation, "first")
        send(alice, conversation, "second", reply_to=reply_to.public_id)
        services.reaction_add(user=alice.user, message_id=reply_to.public_id, emoji="👍")
    payload = expresschat.sync_payload(
        selectors.conversation_changes(
            user=alice.user, positions={c.public_id: 0 for c in (chat, notes, team)}
        )
    )
    assert json.loads(json.dumps(payload)) == payload
    direct_page = selectors.conversation_page(user=alice.user, conversation_id=chat.public_id, kind="direct")
    expected = [
        expresschat.personal_message(m, direct_page.read_pointers, direct_page.reactions.get(m.pk, ()))
        for m in reversed(direct_page.messages)
    ]
    # History lists by seq, sync by rev: the first message was reacted to last.
    by_rev = sorted(expected, key=lambda m: m["Rev"])
    assert payload["Chats"][chat.public_id]["Messages"] == by_rev
    assert payload["Chats"][chat.public_id]["Kind"] == "direct"
    self_page = selectors.conversation_page(user=alice.user, conversation_id=notes.public_id, kind="self")
    expected_self = sorted(
        (expresschat.self_message(m, self_page.reactions.get(m.pk, ())) for m in self_page.messages),
        key=lambda m: m["Rev"],
    )
    assert payload["Chats"][notes.public_id]["Messages"] == expected_self
    group_messages = payload["Chats"][team.public_id]["Messages"]
    assert [m["Kind"] for m in group_messages] == ["system", "text", "text"]
    assert group_messages[-1]["Reactions"] == {"👍": 1} and group_messages[-1]["MyReactions"] == ["👍"]
    assert group_messages[1]["ReplyTo"]["Excerpt"] == "first"
    assert {k for k in payload["Chats"][team.public_id]} == {
        "Kind",
        "Messages",
        "Rev",
        "Reload",
        "More",
        "Left",
        "Gone",
        "Seq",
        "Unread",
        "ReadPointers",
    }
    # Read state, whole, where receipts exist: none in notes to self.
    assert payload["Chats"][notes.public_id]["ReadPointers"] == {}
    assert payload["Chats"][team.public_id]["Seq"] == 3


def test_more_changes_than_the_limit_say_reload(alice, bob, settings):
    max_changes(settings, 3)
    chat = direct(alice, bob)
    for i in range(4):
        send(alice, chat, f"m{i}")
    entry = one(bob, chat, 0)
    assert (entry.reload, entry.messages, entry.last_rev) == (True, [], 4)
    assert ids(one(bob, chat, 1)) and not one(bob, chat, 1).reload  # exactly the limit fits


def test_a_position_beyond_the_conversation_says_reload(alice, bob):
    chat = direct(alice, bob)
    send(alice, chat)
    entry = one(bob, chat, 99)
    assert (entry.reload, entry.last_rev, entry.messages) == (True, 1, [])


def test_one_answer_carries_at_most_the_limit_and_the_rest_say_more(alice, bob, carol, settings):
    max_changes(settings, 3)
    ab, ac = direct(alice, bob), direct(alice, carol)
    for conversation in (ab, ac):
        send(alice, conversation, "1")
        send(alice, conversation, "2")
    found = changes(alice, {ab.public_id: 0, ac.public_id: 0})
    assert len(found[ab.public_id].messages) == 2
    assert (found[ac.public_id].more, found[ac.public_id].last_rev, found[ac.public_id].messages) == (
        True,
        0,
        [],
    )
    again = changes(alice, {ab.public_id: found[ab.public_id].last_rev, ac.public_id: 0})
    assert len(again[ac.public_id].messages) == 2 and not again[ac.public_id].more


def test_a_conversation_left_shows_changes_up_to_leaving(alice, bob, carol):
    team = make_group(alice, bob, carol)
    before = send(alice, team, "before")
    position = last_rev(team)
    group_services.group_leave(user=bob.user, group_id=team.public_id)
    send(alice, team, "after")
    services.message_edit(user=alice.user, message_id=before.public_id, content="before, edited")
    entry = one(bob, team, position)
    assert entry.left is True and not entry.gone
    assert [m.content for m in entry.messages] == ["Bob left", "before, edited"]
    assert entry.last_rev == last_rev(team)


def test_unknown_deleted_malformed_and_foreign_conversations_look_the_same(alice, bob, carol):
    foreign = direct(bob, carol)
    send(bob, foreign, "private")
    deleted = make_group(alice, bob)
    group_services.group_delete(user=alice.user, group_id=deleted.public_id)
    unknown, malformed = new_public_id(), "not an id"
    found = changes(
        alice, {foreign.public_id: 0, deleted.public_id: 0, unknown: 0, malformed: 5}, include_all=True
    )
    for key in (foreign.public_id, deleted.public_id, unknown, malformed):
        assert found[key] == selectors.ConversationChanges(key, None, 0, gone=True)


def test_all_adds_every_other_current_conversation_from_the_start(alice, bob, carol):
    ab, ac, notes = direct(alice, bob), direct(alice, carol), self_chat(alice)
    send(bob, ab, "to alice")
    send(carol, ac, "to alice too")
    left_team = make_group(bob, alice)
    group_services.group_leave(user=alice.user, group_id=left_team.public_id)
    known = last_rev(ab)
    found = changes(alice, {ab.public_id: known}, include_all=True)
    assert set(found) == {ab.public_id, ac.public_id, notes.public_id}  # not the group she left
    assert found[ab.public_id].messages == []
    assert [m.content for m in found[ac.public_id].messages] == ["to alice too"]
    assert found[notes.public_id].messages == [] and found[notes.public_id].last_rev == 0
    assert changes(alice, {}) == {}


@pytest.mark.parametrize(
    "positions",
    [
        None,
        [],
        "abc",
        {"id": -1},
        {"id": True},
        {"id": "3"},
        {"id": 1.0},
        {"id": None},
        {1: 0},
    ],
)
def test_positions_are_validated_strictly(alice, positions):
    error = refused_invalid(lambda: selectors.conversation_changes(user=alice.user, positions=positions))
    assert error.extra["field"] == "positions"


def test_too_many_positions_are_refused(alice, settings):
    settings.CHAT = {**settings.CHAT, "CONVERSATION_LIST_LIMIT": 2}
    positions = {new_public_id(): 0 for _ in range(3)}
    error = refused_invalid(lambda: selectors.conversation_changes(user=alice.user, positions=positions))
    assert error.extra["max_conversations"] == 2


def test_queries_stay_constant_whatever_the_number_of_conversations(
    alice, bob, carol, dave, django_assert_max_num_queries
):
    conversations = [direct(alice, bob), direct(alice, carol), self_chat(alice), make_group(alice, bob, dave)]
    for conversation in conversations:
        target = send(alice, conversation, "first")
        send(alice, conversation, "reply", reply_to=target.public_id)
        services.reaction_add(user=alice.user, message_id=target.public_id, emoji="👍")
        services.message_edit(user=alice.user, message_id=target.public_id, content="edited")
    foreign = direct(bob, dave)
    positions = {c.public_id: 0 for c in conversations} | {foreign.public_id: 0}
    with django_assert_max_num_queries(4):  # memberships, messages, reactions, read pointers
        found = selectors.conversation_changes(user=alice.user, positions=positions)
        payload = expresschat.sync_payload(found)
    assert sum(len(c["Messages"]) for c in payload["Chats"].values()) == 2 * 4 + 1  # + group created
    with django_assert_max_num_queries(5):  # and the other current conversations
        selectors.conversation_changes(user=alice.user, positions={}, include_all=True)


# --- REST -----------------------------------------------------------------------------------


def test_rest_sync_answers_in_snake_case(alice, bob, client_for):
    chat = direct(alice, bob)
    message = send(alice, chat, "hello")
    services.reaction_add(user=bob.user, message_id=message.public_id, emoji="👍")
    gone = new_public_id()
    response = client_for(bob).post("/api/sync/", {"positions": {chat.public_id: 0, gone: 3}}, format="json")
    assert response.status_code == 200
    body = response.json()["conversations"]
    entry = body[chat.public_id]
    assert {k: v for k, v in entry.items() if k != "messages"} == {
        "kind": "direct",
        "last_rev": 2,
        "reload": False,
        "more": False,
        "left": False,
        "gone": False,
        # Read state comes whole: Bob has not read Alice's message; Alice wrote it.
        "last_seq": 1,
        "unread": 1,
        "read_pointers": {alice.id: 1, bob.id: 0},
    }
    (served,) = entry["messages"]
    assert (served["id"], served["seq"], served["rev"], served["conversation_id"]) == (
        message.public_id,
        1,
        2,
        chat.public_id,
    )
    assert served["reactions"] == [{"emoji": "👍", "count": 1, "mine": True}]
    assert body[gone] == {
        "kind": None,
        "messages": [],
        "last_rev": 0,
        "reload": False,
        "more": False,
        "left": False,
        "gone": True,
        "last_seq": 0,
        "unread": 0,
        "read_pointers": {},
    }
    everything = client_for(bob).post("/api/sync/", {"all": True}, format="json").json()["conversations"]
    assert set(everything) == {chat.public_id, self_chat(bob).public_id}


@pytest.mark.parametrize(
    "body",
    [
        {"positions": {"x": -1}},
        {"positions": {"x": "1"}},
        {"positions": {"x": True}},
        {"positions": []},
        {"all": "yes"},
        {"positions": {}, "extra": 1},
    ],
)
def test_rest_sync_refuses_bad_input(alice, client_for, body):
    response = client_for(alice).post("/api/sync/", body, format="json")
    assert response.status_code == 400


def test_rest_sync_needs_a_login(client_for):
    assert client_for().post("/api/sync/", {}, format="json").status_code == 401


def test_read_state_comes_with_every_answer_even_without_changes(alice, bob):
    chat = direct(alice, bob)
    send(alice, chat, "one")
    send(alice, chat, "two")
    position = selectors.conversation_changes(user=alice.user, positions={chat.public_id: 0})[0].last_rev
    services.conversation_mark_read(user=bob.user, conversation_id=chat.public_id, up_to_seq=1)
    (entry,) = selectors.conversation_changes(user=alice.user, positions={chat.public_id: position})
    # No message changed, but Alice learns that Bob read up to 1 (reads are not revisioned).
    assert (entry.messages, entry.last_seq, entry.unread) == ([], 2, 0)
    assert entry.read_pointers == {alice.id: 2, bob.id: 1}
    (for_bob,) = selectors.conversation_changes(user=bob.user, positions={chat.public_id: position})
    assert for_bob.unread == 1
    # A member with receipts off sees only their own pointer.
    bob.user.read_receipts_enabled = False
    bob.user.save(update_fields=["read_receipts_enabled"])
    (private,) = selectors.conversation_changes(user=bob.user, positions={chat.public_id: position})
    assert private.read_pointers == {bob.id: 1}
