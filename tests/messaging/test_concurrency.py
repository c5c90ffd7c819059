"""Concurrent writers on a real database: sequence numbers, idempotency and the one-chat-per-pair
rule hold when requests race. Threads commit for real (transactional_db), each on its own
connection, which it closes when done."""

import io
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from chatproject.core.errors import ApplicationError
from messaging import services
from messaging.models import Conversation, Message

from .conftest import direct

THREADS = 8

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="SQLite serialises writers with one database lock, so there is no race to test",
    ),
]


def run_concurrently(work: Callable[[int], object]) -> list:
    """Start THREADS threads at once (a barrier); return their results, raising any error."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS
    errors: list = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work(index)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results


def test_concurrent_sends_get_distinct_gapless_sequence_numbers(alice, bob, bus_sent):
    conversation = direct(alice, bob)
    senders = [alice.user, bob.user]

    def work(index: int) -> int:
        message, created = services.message_send(
            user=senders[index % 2], conversation_id=conversation.public_id, content=f"m{index}"
        )
        assert created
        return message.seq

    seqs = run_concurrently(work)
    assert sorted(seqs) == list(range(1, THREADS + 1))
    assert sorted(Message.objects.filter(conversation=conversation).values_list("seq", flat=True)) == list(
        range(1, THREADS + 1)
    )
    conversation.refresh_from_db()
    assert conversation.last_seq == THREADS
    created_events = [event for _, event in bus_sent if event["type"] == "message.created"]
    assert sorted(event["message"]["seq"] for event in created_events) == list(range(1, THREADS + 1))


def test_concurrent_retries_with_one_client_message_id_store_one_message(alice, bob, bus_sent):
    conversation = direct(alice, bob)

    def work(_index: int) -> tuple[str, bool]:
        message, created = services.message_send(
            user=alice.user, conversation_id=conversation.public_id, content="once", client_message_id="c-1"
        )
        return message.public_id, created

    results = run_concurrently(work)
    assert len({public_id for public_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert list(Message.objects.filter(conversation=conversation).values_list("seq", flat=True)) == [1]
    conversation.refresh_from_db()
    # The losers' sequence numbers were rolled back with their inserts: no gap.
    assert conversation.last_seq == 1
    assert [event["type"] for _, event in bus_sent].count("message.created") == 1


def test_concurrent_direct_chat_creation_from_both_sides_makes_one_conversation(alice, bob):
    pairs = [(alice, bob), (bob, alice)]

    def work(index: int) -> str:
        user, other = pairs[index % 2]
        conversation, _, _ = services.direct_conversation_get_or_create(
            user=user.user, other_user_id=other.id
        )
        return conversation.public_id

    assert len(set(run_concurrently(work))) == 1
    assert Conversation.objects.filter(kind=Conversation.Kind.DIRECT).count() == 1


def test_concurrent_sends_of_one_upload_store_one_message(alice, bob, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    from messaging import uploads

    conversation = direct(alice, bob)
    pdf = b"%PDF-1.4\n%%EOF\n"
    attachment = uploads.upload_create(user=alice.user, file=io.BytesIO(pdf), name="a.pdf", size=len(pdf))

    def work(index: int) -> str:
        try:
            services.message_send(
                user=alice.user,
                conversation_id=conversation.public_id,
                content=f"m{index}",
                attachment_id=attachment.public_id,
            )
        except ApplicationError as error:
            return str(error.code)
        return "sent"

    results = run_concurrently(work)
    assert sorted(results) == ["conflict"] * (THREADS - 1) + ["sent"]
    assert Message.objects.filter(attachment=attachment).count() == 1


def test_concurrent_retries_of_one_media_send_all_answer_the_original(alice, bob, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    from messaging import uploads

    conversation = direct(alice, bob)
    pdf = b"%PDF-1.4\n%%EOF\n"
    attachment = uploads.upload_create(user=alice.user, file=io.BytesIO(pdf), name="a.pdf", size=len(pdf))

    def work(index: int) -> tuple[int, bool]:
        message, created = services.message_send(
            user=alice.user,
            conversation_id=conversation.public_id,
            content="retried",
            client_message_id="one-send",
            attachment_id=attachment.public_id,
        )
        return message.pk, created

    results = run_concurrently(work)
    assert len({pk for pk, _created in results}) == 1  # no conflict, no second message
    assert sorted(created for _pk, created in results) == [False] * (THREADS - 1) + [True]


def _raw_connection(**options) -> psycopg.Connection:
    """A plain psycopg connection to the test database, outside Django's."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, **options)


def _holding_lock(conversation_pk: int) -> psycopg.Connection:
    """A second connection that locks one conversation row (as a concurrent batch would) until
    its transaction is closed; returns the raw psycopg connection."""
    other = _raw_connection()
    other.execute("SELECT id FROM messaging_conversation WHERE id = %s FOR UPDATE", [conversation_pk])
    return other


def _locked_by_others(pks: list[int]) -> set[int]:
    """Which of these conversation rows another transaction holds locked (a third connection
    that asks for each without waiting)."""
    locked = set()
    with _raw_connection(autocommit=True) as probe:
        for pk in pks:
            try:
                with probe.transaction():
                    probe.execute(
                        "SELECT id FROM messaging_conversation WHERE id = %s FOR UPDATE NOWAIT", [pk]
                    )
            except psycopg.errors.LockNotAvailable:
                locked.add(pk)
    return locked


def _wait_until_blocked(backend_pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with _raw_connection(autocommit=True) as probe:
        while time.monotonic() < deadline:
            waiting = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = ANY(%s)",
                [backend_pids],
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the batch never waited for the held lock")


@pytest.mark.parametrize("held", ["lower", "higher"])
def test_a_send_batch_locks_its_conversations_in_id_order(alice, bob, carol, bus_sent, held):
    """Two batches (two processes) that touch the same conversations must take their rows in one
    order, or each can hold one row the other waits for: a deadlock. While a batch waits for a
    row another transaction holds, it must hold every row of a lower id and none of a higher
    one, whatever plan PostgreSQL picks (the planner is pushed towards a sequential scan of the
    conversation table, whose physical order here is not the id order)."""
    first, second = direct(alice, bob), direct(alice, carol)
    # Rewrite the lower row so that its live version sits after the higher one on disk.
    Conversation.objects.filter(pk=first.pk).update(title="moved")
    low, high = sorted([first.pk, second.pk])
    blocker = _holding_lock(low if held == "lower" else high)
    backend: list[int] = []
    results: list = []

    def batch() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend.append(cursor.fetchone()[0])
                cursor.execute("SET enable_indexscan = off")
                cursor.execute("SET enable_bitmapscan = off")
                cursor.execute("SET enable_nestloop = off")
            results.extend(
                services.message_send_many(
                    requests=[
                        services.SendRequest(user=alice.user, conversation_id=second.public_id, content="2"),
                        services.SendRequest(user=alice.user, conversation_id=first.public_id, content="1"),
                    ]
                )
            )
        finally:
            connection.close()

    thread = threading.Thread(target=batch)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not backend and time.monotonic() < deadline:
            time.sleep(0.01)
        _wait_until_blocked(backend)
        locked = _locked_by_others([low, high])
        if held == "lower":
            assert locked == {low}  # the blocker's; the batch took nothing before it
        else:
            assert locked == {low, high}  # the batch holds the lower one while it waits
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert [r.error for r in results] == [None, None]
    assert [r.message.seq for r in results] == [1, 1]
