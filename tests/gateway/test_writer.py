"""The send batch on the event loop (gateway/writer.py): the steps of `message_send_many` over an
asynchronous connection of the batcher's own, against the real database. The same results and
events as the sync driver; the ORM parts on the database thread; a session that lost its
prepared statements prepares them again; a lost connection is replaced."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import OperationalError

from chatproject.bus.groups import user_group
from gateway import batching, writer
from messaging import services
from messaging.models import Membership, Message
from tests.messaging.conftest import direct, stored_elsewhere, waiting_on_a_lock

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the event-loop driver is PostgreSQL's",
    ),
]


def sends(*items) -> list[services.SendRequest]:
    return [
        services.SendRequest(sender.user, conversation.public_id, content, client_message_id=cid, **extra)
        for sender, conversation, content, cid, *more in items
        for extra in [more[0] if more else {}]
    ]


@pytest.fixture
async def loop_writer():
    made = writer.LoopWriter()
    yield made
    await made.close()


async def backend_pid(made: writer.LoopWriter) -> int:
    connection = await made._connected()
    cursor = await connection.execute("SELECT pg_backend_pid()")
    return (await cursor.fetchone())[0]


async def test_a_batch_is_stored_acked_and_published_as_the_sync_driver_does(
    alice, bob, bus_sent, loop_writer
):
    chat = await sync_to_async(direct)(alice, bob)
    bus_sent.clear()
    results = await loop_writer.write(
        sends((alice, chat, "one", "w-1"), (bob, chat, "two", None), (alice, chat, "three", "w-3"))
    )
    assert [(r.created, r.error, r.message.seq) for r in results] == [
        (True, None, 1),
        (True, None, 2),
        (True, None, 3),
    ]
    stored = await sync_to_async(
        lambda: list(
            Message.objects.filter(conversation=chat).order_by("seq").values_list("content", "public_id")
        )
    )()
    assert stored == [(r.message.content, r.message.public_id) for r in results]
    pointers = await sync_to_async(
        lambda: dict(Membership.objects.filter(conversation=chat).values_list("user_id", "last_read_seq"))
    )()
    assert pointers == {alice.user.pk: 3, bob.user.pk: 2}
    pair = {user_group(alice.id), user_group(bob.id)}
    assert [(set(groups), event["message"]["content"]) for groups, event in bus_sent] == [
        (pair, "one"),
        (pair, "two"),
        (pair, "three"),
    ]
    # A retry with a client message id is answered with the original (the ORM read, on the
    # database thread), and nothing more is stored or published.
    bus_sent.clear()
    (again,) = await loop_writer.write(sends((alice, chat, "one, resent", "w-1")))
    assert not again.created and again.message.pk == results[0].message.pk
    assert bus_sent == []


async def test_refusals_are_the_services_own(alice, bob, carol, bus_sent, loop_writer):
    chat = await sync_to_async(direct)(alice, bob)
    results = await loop_writer.write(
        sends(
            (carol, chat, "not a member", None),
            (alice, chat, "", None),
            (alice, chat, "fine", None),
            (alice, chat, "quoting nothing", None, {"reply_to": "f" * 24}),
            (alice, chat, "with an upload", None, {"message_kind": "image", "attachment_id": "e" * 24}),
        )
    )
    assert [r.error.code.value if r.error else None for r in results] == [
        "not_found",
        "invalid",
        None,
        "not_found",
        "not_found",
    ]
    assert results[2].created and results[2].message.seq == 1


async def test_a_reply_quotes_its_target(alice, bob, bus_sent, loop_writer):
    chat = await sync_to_async(direct)(alice, bob)
    (first,) = await loop_writer.write(sends((alice, chat, "question", None)))
    (reply,) = await loop_writer.write(
        sends((bob, chat, "answer", None, {"reply_to": first.message.public_id}))
    )
    assert reply.created and reply.message.reply_to_id == first.message.pk
    assert bus_sent[-1][1]["message"]["reply_to"]["id"] == first.message.public_id


async def test_a_session_that_lost_its_prepared_statements_prepares_them_again(
    alice, bob, bus_sent, loop_writer
):
    chat = await sync_to_async(direct)(alice, bob)
    await loop_writer.write(sends((alice, chat, "first", None)))
    connection = await loop_writer._connected()
    await connection.execute("DEALLOCATE ALL")
    (result,) = await loop_writer.write(sends((alice, chat, "second", None)))
    assert result.created and result.message.seq == 2
    cursor = await connection.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
    names = [name for (name,) in await cursor.fetchall()]
    assert [name.rsplit("_", 1)[0] for name in names] == [
        "chat_send_members",
        "chat_send_one",
        "chat_send_probe",
        "chat_send_write",
    ]


async def test_a_lost_connection_fails_the_batch_and_the_next_one_reconnects(
    alice, bob, bus_sent, loop_writer
):
    chat = await sync_to_async(direct)(alice, bob)
    await loop_writer.write(sends((alice, chat, "first", None)))
    pid = await backend_pid(loop_writer)
    await sync_to_async(_terminate)(pid)
    with pytest.raises(OperationalError):
        await loop_writer.write(sends((alice, chat, "lost", None)))
    (result,) = await loop_writer.write(sends((alice, chat, "second", None)))
    assert result.created and result.message.seq == 2 and await backend_pid(loop_writer) != pid


def _terminate(pid: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


async def test_the_batcher_retries_a_batch_whose_connection_was_lost_on_a_fresh_one(
    alice, bob, bus_sent, settings
):
    settings.CHAT = {**settings.CHAT, "SEND_ON_LOOP": True}
    chat = await sync_to_async(direct)(alice, bob)
    batcher = batching.SendBatcher()
    (first,) = await asyncio.gather(batcher.submit(sends((alice, chat, "first", None))[0]))
    assert first.created
    (connection,) = batcher._loop_writers
    await sync_to_async(_terminate)(await backend_pid(connection))
    second = await batcher.submit(sends((alice, chat, "second", None))[0])
    assert second.created and second.message.seq == 2
    assert batcher.stats["batches"] == 2 and batcher.idle
    await connection.close()


async def test_the_batcher_uses_the_event_loop_only_where_it_may(settings, monkeypatch):
    from django.db import connections

    settings.CHAT = {**settings.CHAT, "SEND_ON_LOOP": True}
    assert writer.usable()
    options = connections["default"].settings_dict["OPTIONS"]
    for name, value in [("server_side_binding", True), ("assume_role", "chat"), ("isolation_level", 3)]:
        monkeypatch.setitem(options, name, value)
        assert not writer.usable()
        monkeypatch.delitem(options, name)
    assert writer.usable()
    settings.CHAT = {**settings.CHAT, "SEND_ON_LOOP": False}
    assert not writer.usable()


async def test_a_retry_the_probe_missed_is_answered_with_the_original(
    alice, bob, bus_sent, loop_writer, monkeypatch, settings
):
    """Another process stores a send between the probe and the write (a probe that sees nothing):
    the write fails on the idempotency constraint and stores nothing, and the sends go again one
    by one, the ORM parts on the database thread. (The two steps: the one statement probes in
    its write, `test_a_retry_stored_while_the_one_statement_waits_...`.)"""
    from messaging.services import sending

    settings.CHAT = {**settings.CHAT, "SEND_ONE_STATEMENT": False}

    chat = await sync_to_async(direct)(alice, bob)
    (original,) = await loop_writer.write(sends((alice, chat, "first", "r-1")))
    real, calls = sending._memberships_and_stored, []

    def blind(keys):
        memberships, stored = yield from real(keys)
        calls.append(len(keys))
        return memberships, ({} if len(calls) == 1 else stored)

    monkeypatch.setattr(sending, "_memberships_and_stored", blind)
    bus_sent.clear()
    results = await loop_writer.write(sends((alice, chat, "first again", "r-1"), (bob, chat, "reply", "r-2")))
    assert calls == [2, 1, 1]
    assert results[0].message.pk == original.message.pk and not results[0].created
    assert results[1].created and results[1].message.seq == 2
    assert [event["message"]["content"] for _groups, event in bus_sent] == ["reply"]


async def test_a_retry_stored_while_the_one_statement_waits_is_answered_with_the_original(
    alice, bob, bus_sent, loop_writer
):
    """The one statement on the event loop's connection, failing on the idempotency index when a
    concurrent send of the same client message id commits (tests/messaging/
    test_send_one_statement.py has the same race on the sync driver): the error reaches the
    steps as Django's IntegrityError, the connection stays usable, and the two steps answer."""
    chat = await sync_to_async(direct)(alice, bob)
    with stored_elsewhere(chat, alice, "first", "race-1") as other:
        batch = asyncio.ensure_future(
            loop_writer.write(sends((alice, chat, "first", "race-1"), (bob, chat, "hello", None)))
        )
        assert await sync_to_async(waiting_on_a_lock)("chat_send_one")
        await sync_to_async(other.commit)()
    first, second = await asyncio.wait_for(batch, 10)
    assert not first.created and first.message.pk == other.result.pk
    assert second.created and second.message.seq == 2
    assert [e["message"]["content"] for _g, e in bus_sent if e["type"] == "message.created"] == ["hello"]
    (third,) = await loop_writer.write(sends((bob, chat, "after", None)))
    assert third.created and third.message.seq == 3


async def test_the_statements_are_prepared_again_as_the_connection_writes_tenfold(
    alice, bob, bus_sent, loop_writer, monkeypatch
):
    """Generic plans made while the tables were nearly empty are made again after 3, then 30
    messages (`REPLAN_FIRST`, here 3): a new `prepare_time` for every send statement."""
    monkeypatch.setattr(writer, "REPLAN_FIRST", 3)
    chat = await sync_to_async(direct)(alice, bob)
    await loop_writer.write(sends((alice, chat, "one", None)))
    connection = await loop_writer._connected()

    async def prepared_at() -> tuple:
        cursor = await connection.execute("SELECT count(*), min(prepare_time) FROM pg_prepared_statements")
        return await cursor.fetchone()

    count, first = await prepared_at()
    assert count == 4
    await loop_writer.write(sends((alice, chat, "two", None)))
    assert await prepared_at() == (4, first)
    await loop_writer.write(sends((bob, chat, "three", None)))
    count, again = await prepared_at()
    assert count == 4 and again > first  # every one of them prepared again
    assert loop_writer._replan_at == 30
    (result,) = await loop_writer.write(sends((bob, chat, "four", None)))
    assert result.created and result.message.seq == 4
    assert await prepared_at() == (4, again)


def test_a_connection_made_on_another_event_loop_is_replaced(alice, bob, bus_sent):
    made = writer.LoopWriter()
    chat = direct(alice, bob)
    asyncio.run(made.write(sends((alice, chat, "first", None))))
    first = made._connection
    (result,) = asyncio.run(made.write(sends((alice, chat, "second", None))))
    assert result.created and result.message.seq == 2
    assert made._connection is not first and first.closed
    asyncio.run(made.close())
