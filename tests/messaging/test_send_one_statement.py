"""The one-statement send (CHAT SEND_ONE_STATEMENT, PostgreSQL, outside a transaction): a batch
of plain sends is probed and stored by one statement, its members read in the same round trip,
whole or not at all; a batch it does not store goes through the probe and the write. Whatever
path a batch takes, its answers, its stored rows and its events are the same:
`test_a_batch_ends_the_same_whichever_path_it_takes` runs each kind of batch both ways on two
copies of the same world and compares them."""

import json
import re
import threading

import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from chatproject.bus.groups import conversation_group, user_group
from gateway.batching import SendBatcher
from messaging import services
from messaging.models import Conversation, Membership, Message
from messaging.services import sending

from .conftest import blocked_elsewhere, direct, group, leave, self_chat, stored_elsewhere, waiting_on_a_lock

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the one-statement send is PostgreSQL's",
    ),
]


def request(sender, conversation_id, content, cid=None, **kwargs) -> services.SendRequest:
    return services.SendRequest(sender.user, conversation_id, content, client_message_id=cid, **kwargs)


def statement_names(captured) -> list[str]:
    """The send statements a batch ran, by kind ("one", "members", "probe", "write")."""
    return re.findall(r"EXECUTE chat_send_([a-z]+)_", " ".join(q["sql"] for q in captured.captured_queries))


def created_contents(bus_sent) -> list[str]:
    return [event["message"]["content"] for _groups, event in bus_sent if event["type"] == "message.created"]


def test_a_batch_of_plain_sends_is_one_query(alice, bob, carol, bus_sent):
    chat, room = direct(alice, bob), group(alice, bob, carol)
    services.message_send_many(requests=[request(alice, chat.public_id, "warm up", "w-1")])
    bus_sent.clear()
    with CaptureQueriesContext(connection) as captured:
        results = services.message_send_many(
            requests=[
                request(alice, chat.public_id, "hi bob", "c-1"),
                request(bob, room.public_id, "hi all", "c-2"),
                request(alice, chat.public_id, "again"),
            ]
        )
    assert len(captured.captured_queries) == 1
    assert statement_names(captured) == ["one", "members"]
    assert [(r.created, r.message.seq, r.message.rev) for r in results] == [
        (True, 2, 2),
        (True, 1, 1),
        (True, 3, 3),
    ]
    stored = Message.objects.get(pk=results[0].message.pk)
    assert (stored.content, stored.sender_id, stored.client_message_id) == ("hi bob", alice.user.pk, "c-1")
    assert stored.public_id == results[0].message.public_id
    chat.refresh_from_db()
    assert (chat.last_seq, chat.last_rev) == (3, 3)
    assert Membership.objects.get(conversation=chat, user=alice.user).last_read_seq == 3
    assert Membership.objects.get(conversation=chat, user=bob.user).last_read_seq == 0
    assert Membership.objects.get(conversation=room, user=bob.user).last_read_seq == 1
    pair = {user_group(alice.id), user_group(bob.id)}
    assert [(set(groups), event["message"]["content"]) for groups, event in bus_sent] == [
        (pair, "hi bob"),
        ({conversation_group(room.public_id)}, "hi all"),
        (pair, "again"),
    ]


def test_without_the_setting_a_batch_takes_the_two_statements(alice, bob, bus_sent, settings):
    settings.CHAT = {**settings.CHAT, "SEND_ONE_STATEMENT": False}
    chat = direct(alice, bob)
    services.message_send_many(requests=[request(alice, chat.public_id, "warm up")])
    with CaptureQueriesContext(connection) as captured:
        (result,) = services.message_send_many(requests=[request(alice, chat.public_id, "two", "t-1")])
    assert result.created and result.message.seq == 2
    assert statement_names(captured) == ["probe", "write"]


def test_inside_a_transaction_a_batch_takes_the_two_statements(alice, bob, bus_sent):
    """The one statement relies on PostgreSQL's implicit transaction of a query: inside an atomic
    block (a REST request, a service of its own) the batch runs as before."""
    chat = direct(alice, bob)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        (result,) = services.message_send_many(requests=[request(alice, chat.public_id, "inside", "i-1")])
    assert result.created and result.message.seq == 1
    assert "chat_send_one" not in " ".join(q["sql"] for q in captured.captured_queries)


def test_a_batch_with_a_reply_takes_the_two_statements_whole(alice, bob, bus_sent):
    """A reply's quoted message is looked up through the ORM: its batch goes through the two
    steps, all of it, so the batch stays in the order it was queued."""
    chat = direct(alice, bob)
    (quoted,) = services.message_send_many(requests=[request(bob, chat.public_id, "question", "q-1")])
    with CaptureQueriesContext(connection) as captured:
        results = services.message_send_many(
            requests=[
                request(bob, chat.public_id, "first", "b-1"),
                request(alice, chat.public_id, "answer", "a-1", reply_to=quoted.message.public_id),
                request(bob, chat.public_id, "after", "b-2"),
            ]
        )
    assert all(r.created for r in results)
    assert "one" not in statement_names(captured)
    assert [r.message.seq for r in results] == [2, 3, 4]
    assert results[1].message.reply_to_id == quoted.message.pk


def test_a_batch_with_a_refused_send_stores_nothing_in_the_one_statement(
    alice, bob, carol, bus_sent, monkeypatch
):
    """The one statement stores the whole batch or none of it: with a send it refuses, nothing
    is stored there, and the two steps answer every send. So a batch is still one transaction:
    when the two steps fail (here their probe loses the connection), nothing of the batch is
    stored or published, and the batcher's second try stores each message once."""
    chat = direct(alice, bob)
    real, probes = sending._memberships_and_stored, []

    def lost_once(keys):  # steps, as the real one
        probes.append(keys)
        if len(probes) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return (yield from real(keys))

    monkeypatch.setattr(sending, "_memberships_and_stored", lost_once)
    bus_sent.clear()
    requests = [request(alice, chat.public_id, "hi"), request(carol, chat.public_id, "not a member")]
    with pytest.raises(OperationalError):
        services.message_send_many(requests=requests)
    assert not Message.objects.filter(conversation=chat).exists()
    assert created_contents(bus_sent) == []
    results, error = SendBatcher()._written([(r, None) for r in requests])
    assert error is None
    assert [(r.created, r.error.code if r.error else None) for r in results] == [
        (True, None),
        (False, "not_found"),
    ]
    assert list(Message.objects.filter(conversation=chat).values_list("content", flat=True)) == ["hi"]
    assert created_contents(bus_sent) == ["hi"]


def test_a_repeat_within_the_batch_is_answered_with_the_first(alice, bob, bus_sent):
    chat = direct(alice, bob)
    bus_sent.clear()
    results = services.message_send_many(
        requests=[
            request(alice, chat.public_id, "once", "r-1"),
            request(alice, chat.public_id, "once", "r-1"),
            request(alice, chat.public_id, "after"),
        ]
    )
    assert [r.created for r in results] == [True, False, True]
    assert results[1].message.pk == results[0].message.pk
    assert [r.message.seq for r in results] == [1, 1, 2]
    assert Message.objects.filter(conversation=chat).count() == 2
    assert created_contents(bus_sent) == ["once", "after"]


def test_a_retry_stored_after_the_statement_began_is_answered_with_the_original(alice, bob, bus_sent):
    """A concurrent send stores the same client message id while this batch's statement runs:
    the statement, which saw no such message, waits for the other transaction (on the
    conversation row) and fails on the idempotency index when it commits; nothing of the batch
    is stored by it, and the two steps answer the retry with the original and store the other
    send once."""
    chat = direct(alice, bob)
    results = {}

    def this_batch() -> None:
        try:
            results["batch"] = services.message_send_many(
                requests=[
                    request(alice, chat.public_id, "first", "race-1"),
                    request(bob, chat.public_id, "hello"),
                ]
            )
        except Exception as error:  # noqa: BLE001 - the test reports it
            results["error"] = error
        finally:
            connection.close()

    with stored_elsewhere(chat, alice, "first", "race-1") as other:
        batch = threading.Thread(target=this_batch)
        batch.start()
        assert waiting_on_a_lock("chat_send_one"), "the statement never waited for the other transaction"
    batch.join(10)
    assert "error" not in results, results.get("error")
    first, second = results["batch"]
    assert not first.created and first.message.pk == other.result.pk
    assert second.created and second.message.seq == 2
    assert list(
        Message.objects.filter(conversation=chat).order_by("seq").values_list("content", flat=True)
    ) == [
        "first",
        "hello",
    ]
    assert created_contents(bus_sent) == ["hello"]


def test_a_block_that_commits_while_the_statement_waits_stores_nothing(alice, bob, bus_sent):
    """The statement's checks see the snapshot it started from; a block committed while it
    waited for the conversation's lock is seen on the locked row: nothing is stored, no seq is
    taken, and the two steps refuse the batch."""
    chat = direct(alice, bob)
    results = {}

    def this_batch() -> None:
        try:
            results["batch"] = services.message_send_many(
                requests=[request(alice, chat.public_id, "too late", "b-1")]
            )
        except Exception as error:  # noqa: BLE001 - the test reports it
            results["error"] = error
        finally:
            connection.close()

    bus_sent.clear()
    with blocked_elsewhere(chat, bob):
        batch = threading.Thread(target=this_batch)
        batch.start()
        assert waiting_on_a_lock("chat_send_one"), "the statement never waited for the block's transaction"
    batch.join(10)
    assert "error" not in results, results.get("error")
    ((result),) = results["batch"]
    assert not result.created and result.error.code == "permission_denied"
    chat.refresh_from_db()
    assert (chat.last_seq, chat.blocked_at is not None) == (0, True)
    assert not Message.objects.filter(conversation=chat).exists()
    assert created_contents(bus_sent) == []


# One batch, run through each path on its own copy of the world.


def world(make_user) -> dict:
    """Users and conversations named by label, in the same state each time it is made."""
    alice, bob, carol, dave, erin = (make_user(name) for name in ("Alice", "Bob", "Carol", "Dave", "Erin"))
    chat, room, blocked = direct(alice, bob), group(alice, bob, carol, dave), direct(alice, erin)
    services.message_send_many(requests=[request(alice, chat.public_id, "zero", "c-0")])
    services.message_send_many(requests=[request(carol, room.public_id, "welcome", "w-0")])
    leave(dave, room)
    services.conversation_block(user=alice.user, conversation_id=blocked.public_id, blocked=True)
    notes = self_chat(alice)
    return {
        "users": {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin},
        "conversations": {"chat": chat, "room": room, "blocked": blocked, "notes": notes},
    }


# (sender, conversation label or a raw id, content, client message id, expected kind)
MIXED = [
    ("alice", "chat", "one", "c-1", None),
    ("bob", "room", "two", "c-2", None),
    ("alice", "chat", "three", None, None),
    ("carol", "chat", "not a member", "x-1", None),
    ("dave", "room", "gone", "x-2", None),
    ("alice", "blocked", "blocked", "x-3", None),
    ("alice", "chat", "zero again", "c-0", None),
    ("alice", "chat", "wrong kind", "x-4", "group"),
    ("alice", "notes", "note", "n-1", "self"),
    ("bob", "chat", "", "x-5", None),
    ("alice", "not-an-id", "nowhere", "x-6", None),
    ("bob", "room", "four", "c-3", "group"),
    ("alice", "chat", "one", "c-1", None),
    ("carol", "room", "five", None, None),
]


def run_batch(the_world: dict, bus_sent: list, picked: list[int]) -> dict:
    """Send MIXED's entries `picked`, in that order, as one batch; what it left (`described`)."""
    users, conversations = the_world["users"], the_world["conversations"]
    bus_sent.clear()
    requests = [
        request(
            users[sender],
            conversations[label].public_id if label in conversations else label,
            content,
            cid,
            kind=kind,
        )
        for sender, label, content, cid, kind in (MIXED[i] for i in picked)
    ]
    results = services.message_send_many(requests=requests)
    return described(the_world, results, list(bus_sent))


def described(the_world: dict, results, sent) -> dict:
    """What a batch left, with every id and time replaced by a label, so two worlds compare."""
    users, conversations = the_world["users"], the_world["conversations"]
    labels = {u.user.public_id: name for name, u in users.items()}
    labels |= {c.public_id: name for name, c in conversations.items()}
    pks = {c.pk: name for name, c in conversations.items()}
    for message in Message.objects.filter(conversation__in=[c.pk for c in conversations.values()]):
        labels[message.public_id] = f"{pks[message.conversation_id]}#{message.seq}"

    def plain(value) -> str:
        text = json.dumps(value, sort_keys=True, default=str)
        text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", "T", text)
        return re.sub(r"[0-9a-f]{24}", lambda m: labels.get(m.group(0), "?"), text)

    answers = [
        (
            r.created,
            r.error.code if r.error else None,
            None
            if r.message is None
            else (
                labels[r.message.public_id],
                r.message.content,
                r.message.rev,
                r.message.kind,
                r.message.client_message_id,
            ),
        )
        for r in results
    ]
    rows = {
        name: (
            Conversation.objects.filter(pk=c.pk).values_list("last_seq", "last_rev").get(),
            list(
                Message.objects.filter(conversation=c)
                .order_by("seq")
                .values_list("seq", "rev", "sender__display_name", "content", "client_message_id", "kind")
            ),
            sorted(
                Membership.objects.filter(conversation=c).values_list("user__display_name", "last_read_seq")
            ),
        )
        for name, c in conversations.items()
    }
    events = [(sorted(plain(g) for g in groups), plain(event)) for groups, event in sent]
    return {"answers": answers, "rows": rows, "events": events}


BATCHES = {
    # Every send stored, by the one statement: several senders, several sends a conversation,
    # a direct chat, a group and notes to self.
    "plain": ([0, 1, 2, 8, 11, 13], ["one", "members"]),
    # A send refused (not a member, gone, blocked, the wrong kind): the one statement stores
    # nothing, the two steps answer all of them.
    "refused": ([0, 3, 1, 4, 5, 7, 2], ["one", "members", "probe", "write"]),
    # A retry of a stored send: likewise, the two steps answer it with the original.
    "retry": ([0, 6, 2], ["one", "members", "probe", "write"]),
    # A repeat within the batch, an id that is no conversation's, empty content: the two steps
    # only.
    "mixed": (list(range(len(MIXED))), ["probe", "write"]),
}


@pytest.mark.parametrize("batch", list(BATCHES))
def test_a_batch_ends_the_same_whichever_path_it_takes(make_user, bus_sent, settings, batch):
    """One batch sent with CHAT SEND_ONE_STATEMENT off, then on, each on its own copy of the
    same world: the same answers, stored rows and events, whether the one statement stored
    it, stored nothing and left it to the two steps, or was not tried."""
    picked, statements = BATCHES[batch]
    settings.CHAT = {**settings.CHAT, "SEND_ONE_STATEMENT": False}
    two_steps = run_batch(world(make_user), bus_sent, picked)
    settings.CHAT = {**settings.CHAT, "SEND_ONE_STATEMENT": True}
    the_world = world(make_user)
    with CaptureQueriesContext(connection) as captured:
        one_statement = run_batch(the_world, bus_sent, picked)
    assert statement_names(captured) == statements
    assert one_statement == two_steps


def test_the_mixed_batch_is_answered_as_the_two_steps_answer_it(make_user, bus_sent):
    """What `test_a_batch_ends_the_same_whichever_path_it_takes` compares, spelled out once."""
    answers = run_batch(world(make_user), bus_sent, BATCHES["mixed"][0])["answers"]
    assert [created for created, _error, _message in answers] == [
        True, True, True, False, False, False, False, False, True, False, False, True, False, True,
    ]  # fmt: skip
    assert [error for _created, error, _message in answers] == [
        None, None, None, "not_found", "not_found", "permission_denied", None, "not_found", None,
        "invalid", "not_found", None, None, None,
    ]  # fmt: skip
    assert answers[6][2][:2] == ("chat#1", "zero")  # the retry: the original
    assert answers[12][2] == answers[0][2]  # the repeat: the first
