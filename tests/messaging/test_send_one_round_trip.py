"""A send batch outside any transaction (the realtime batcher's case) on PostgreSQL, through the
two steps (CHAT SEND_ONE_STATEMENT off; the one statement: test_send_one_statement.py): its
write and members read go as one query, without BEGIN and COMMIT, and PostgreSQL runs that
query as one transaction. These tests commit for real (transactional_db), so they see what a
batch left behind when part of it failed."""

import json

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.test.utils import CaptureQueriesContext

from chatproject.bus.groups import conversation_group, user_group
from messaging import services
from messaging.models import Conversation, Membership, Message
from messaging.services import audience, sending, storage

from .conftest import direct, group

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the one-query write is PostgreSQL's; elsewhere a batch is an atomic block",
    ),
]


@pytest.fixture(autouse=True)
def two_steps(settings):
    settings.CHAT = {**settings.CHAT, "SEND_ONE_STATEMENT": False}


def requests_for(*sends) -> list[services.SendRequest]:
    return [
        services.SendRequest(sender.user, conversation.public_id, content, client_message_id=cid)
        for sender, conversation, content, cid in sends
    ]


def test_a_batch_outside_a_transaction_writes_and_reads_its_audience_in_one_query(
    alice, bob, carol, bus_sent
):
    chat, room = direct(alice, bob), group(alice, bob, carol)
    requests = requests_for(
        (alice, chat, "hi bob", "c-1"), (bob, room, "hi all", "c-2"), (alice, chat, "again", None)
    )
    assert not connection.in_atomic_block
    storage._send_prepared(connections["default"])  # a connection's first batch prepares them
    bus_sent.clear()
    with CaptureQueriesContext(connection) as captured:
        results = services.message_send_many(requests=requests)
    assert [r.created for r in results] == [True, True, True]
    # The memberships-and-retries read, then the write with the members read in the same query.
    assert len(captured.captured_queries) == 2
    assert [r.message.seq for r in results] == [1, 1, 2]
    assert Membership.objects.get(conversation=chat, user=alice.user).last_read_seq == 2
    pair = {user_group(alice.id), user_group(bob.id)}
    assert [(set(groups), event["message"]["content"]) for groups, event in bus_sent] == [
        (pair, "hi bob"),
        ({conversation_group(room.public_id)}, "hi all"),
        (pair, "again"),
    ]


def test_a_batch_whose_members_read_fails_stores_nothing_and_publishes_nothing(
    alice, bob, bus_sent, monkeypatch
):
    """The write and the read after it are one transaction: when the read fails, the messages,
    their seqs and the read pointers are rolled back with it, and nothing is acked."""
    chat = direct(alice, bob)
    bus_sent.clear()
    monkeypatch.setattr(
        audience.AudiencesRead, "statement", property(lambda self: ("SELECT 1 / (0 * %s)", [1]))
    )
    with pytest.raises(DatabaseError):
        services.message_send_many(requests=requests_for((alice, chat, "lost?", "c-1")))
    chat.refresh_from_db()
    assert (chat.last_seq, chat.last_rev) == (0, 0)
    assert not Message.objects.filter(conversation=chat).exists()
    assert Membership.objects.get(conversation=chat, user=alice.user).last_read_seq == 0
    assert bus_sent == []
    monkeypatch.undo()
    (result,) = services.message_send_many(requests=requests_for((alice, chat, "stored", "c-1")))
    assert result.created and result.message.seq == 1


def test_a_retry_the_probe_missed_is_answered_with_the_original_and_stored_once(
    alice, bob, bus_sent, monkeypatch
):
    """Another process stores a send between this batch's probe and its write (simulated by a
    probe that sees nothing): the write fails on the idempotency constraint, nothing of the
    batch is stored, and the sends go again one by one: the retry gets the original, the
    others are stored exactly once, and only they are published."""
    chat = direct(alice, bob)
    (original,) = services.message_send_many(requests=requests_for((alice, chat, "first", "c-1")))
    bus_sent.clear()
    real = sending._memberships_and_stored
    calls = []

    def blind(keys):  # steps, as the real one (sending.send_steps)
        memberships, stored = yield from real(keys)
        calls.append(len(keys))
        return memberships, ({} if len(calls) == 1 else stored)

    monkeypatch.setattr(sending, "_memberships_and_stored", blind)
    results = services.message_send_many(
        requests=requests_for((alice, chat, "first again", "c-1"), (bob, chat, "reply", "c-9"))
    )
    assert calls == [2, 1, 1]  # the batch, then each send alone after its write failed
    assert results[0].message.pk == original.message.pk and not results[0].created
    assert results[1].created and results[1].message.seq == 2
    assert list(
        Message.objects.filter(conversation=chat).order_by("seq").values_list("content", flat=True)
    ) == [
        "first",
        "reply",
    ]
    assert Conversation.objects.get(pk=chat.pk).last_seq == 2
    assert [
        event["message"]["content"] for _groups, event in bus_sent if event["type"] == "message.created"
    ] == ["reply"]


def test_the_idempotency_probe_looks_each_key_up_on_its_index_however_long_the_history(alice, bob, bus_sent):
    """A probe that read every message of the batch's conversations and filtered them (what an
    outer join to the message table made PostgreSQL do) costs more with every message stored."""
    chat = direct(alice, bob)
    for b in range(20):
        services.message_send_many(
            requests=requests_for(*[(alice, chat, f"{b}-{i}", f"h-{b}-{i}") for i in range(100)])
        )
        if b == 0:  # statistics that lag behind the history, as on a busy server
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE messaging_message")
    with connection.cursor() as cursor:
        keys = [(alice.user.pk, chat.public_id, "h-3-7"), (bob.user.pk, chat.public_id, None)]
        cursor.execute("EXPLAIN " + storage._memberships_probe_sql(connection.vendor), [json.dumps(keys)])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_idempotency" in plan, plan
    memberships, stored = sending.drive(storage._memberships_and_stored(keys))
    assert len(memberships) == 2
    assert list(stored) == [(chat.pk, alice.user.pk, "h-3-7")]


def created_contents(bus_sent) -> list[str]:
    return [event["message"]["content"] for _groups, event in bus_sent if event["type"] == "message.created"]


def test_a_batch_outside_a_transaction_executes_the_prepared_statements(alice, bob, bus_sent):
    """Prepared once per connection (CHAT SEND_PREPARED): later batches send `EXECUTE`s, so
    PostgreSQL neither parses nor plans the two statements again."""
    chat = direct(alice, bob)
    services.message_send_many(requests=requests_for((alice, chat, "first", "p-1")))
    with CaptureQueriesContext(connection) as captured:
        results = services.message_send_many(
            requests=requests_for((alice, chat, "second", "p-2"), (bob, chat, "third", "p-3"))
        )
    assert [r.message.seq for r in results] == [2, 3]
    assert [q["sql"].split("(")[0].rsplit("_", 1)[0] for q in captured.captured_queries] == [
        "EXECUTE chat_send_probe",
        "EXECUTE chat_send_write",
    ]


@pytest.mark.parametrize("dropped", ["ALL", "write"])
def test_a_connection_that_lost_its_prepared_statements_prepares_them_again(alice, bob, bus_sent, dropped):
    """A pooler's server reset (`DISCARD ALL`) drops them under the process: the statement that
    finds its own gone (the probe or, when only the write went, the write) prepares what is
    missing and runs once more; the batch is stored and published once."""
    chat = direct(alice, bob)
    services.message_send_many(requests=requests_for((alice, chat, "first", "d-1")))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DEALLOCATE {storage._send_statements()[dropped][0] if dropped == 'write' else dropped}"
        )
    bus_sent.clear()
    results = services.message_send_many(
        requests=requests_for((alice, chat, "second", "d-2"), (bob, chat, "third", None))
    )
    assert [(r.created, r.message.seq) for r in results] == [(True, 2), (True, 3)]
    assert Message.objects.filter(conversation=chat).count() == 3
    assert created_contents(bus_sent) == ["second", "third"]


def test_without_send_prepared_a_batch_sends_its_statements(alice, bob, bus_sent, settings):
    settings.CHAT = {**settings.CHAT, "SEND_PREPARED": False}
    chat = direct(alice, bob)
    with CaptureQueriesContext(connection) as captured:
        (result,) = services.message_send_many(requests=requests_for((alice, chat, "plain", "n-1")))
    assert result.created and created_contents(bus_sent) == ["plain"]
    assert len(captured.captured_queries) == 2
    assert not any("chat_send" in q["sql"] for q in captured.captured_queries)


def test_a_statement_of_another_version_held_by_the_session_is_never_run(alice, bob, bus_sent):
    """A session that outlived a deploy (a pooler in session mode) may hold a send statement of
    an older version: its name differs (the digest of its text), so a batch prepares its own."""
    chat = direct(alice, bob)
    storage._prepared.discard(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
        for name in ("chat_send_write", "chat_send_write_000000000000"):
            cursor.execute(f"PREPARE {name} (jsonb, timestamptz) AS SELECT 1, 'x', 1, 1 WHERE false")
    (result,) = services.message_send_many(requests=requests_for((alice, chat, "current", "v-1")))
    assert result.created and result.message.seq == 1
    assert Message.objects.filter(conversation=chat, content="current").count() == 1
    assert created_contents(bus_sent) == ["current"]
