"""The handshake's read on the event loop (gateway/reader.py) finds what the read threads find
(`gateway.auth.connection_open`), refuses what they refuse, and recovers from a lost
connection. Real PostgreSQL."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from accounts import services as account_services
from accounts.tokens import access_decode
from chatproject.core.errors import ApplicationError, ErrorCode
from gateway import reader
from gateway.auth import FIRST_PARTY_POLICY, GREETING_KINDS, Credentials, authenticate, connection_open
from messaging import services

from ..messaging.conftest import direct, group, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def fresh_reader():
    """Each test's event loop gets its own connections, closed with it."""
    reader.reader._loop = None
    yield
    await reader.reader.close()


def claims_of(someone):
    return access_decode(someone.access)


async def on_loop(someone):
    return await reader.connection_open(claims=claims_of(someone), kinds=GREETING_KINDS)


def on_threads(someone):
    credentials = Credentials(someone.access, None, renewable=False)
    return connection_open(credentials=credentials, claims=claims_of(someone))


def world(alice, bob, carol, dave):
    """Alice: a group, a direct chat with messages, a request to Dave not accepted yet, a
    request from Carol she has not answered, and her self chat."""
    group(alice, bob, carol)
    chat = direct(alice, bob)
    send(bob, chat, "one")
    send(alice, chat, "two")
    services.chat_request_create(user=alice.user, other_user_id=dave.id)
    services.chat_request_create(user=carol.user, other_user_id=alice.id)


async def test_the_loop_read_is_the_threads_read(alice, bob, carol, dave):
    await sync_to_async(world)(alice, bob, carol, dave)
    user, snapshot = await on_loop(alice)
    expected = await sync_to_async(on_threads)(alice)
    assert (user.pk, user.public_id, user.display_name) == (
        expected.user.pk,
        expected.user.public_id,
        expected.user.display_name,
    )
    assert snapshot == expected.snapshot
    partners = {summary.partner_id for summary in snapshot.summaries if summary.kind == "direct"}
    assert {bob.user.public_id, dave.user.public_id} <= partners  # a member, and a request's recipient
    assert len(snapshot.group_ids) == 1


async def test_a_user_without_conversations_is_read_in_one_round_trip(make_user, monkeypatch):
    nobody = await sync_to_async(make_user)("Nobody")
    queries = []
    real = reader._sets

    async def counted(statements, **kwargs):
        queries.append(len(statements))
        return await real(statements, **kwargs)

    monkeypatch.setattr(reader, "_sets", counted)
    user, snapshot = await on_loop(nobody)
    assert user.public_id == nobody.user.public_id
    expected = await sync_to_async(on_threads)(nobody)
    assert snapshot == expected.snapshot
    # The session check and the memberships, together (a new connection prepares them first).
    assert queries == [2]


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        ("logout", ErrorCode.AUTHENTICATION_FAILED),
        ("ban", ErrorCode.BANNED),
        ("deactivate", ErrorCode.AUTHENTICATION_FAILED),
    ],
)
async def test_the_loop_read_refuses_what_the_threads_refuse(alice, spoil, code):
    def spoiled():
        if spoil == "logout":
            account_services.user_logout(access_token=alice.access)
        elif spoil == "ban":
            account_services.user_ban(user=alice.user, by=None)
        else:
            alice.user.is_active = False
            alice.user.save(update_fields=["is_active"])

    await sync_to_async(spoiled)()
    with pytest.raises(ApplicationError) as on_the_loop:
        await on_loop(alice)
    with pytest.raises(ApplicationError) as on_a_thread:
        await sync_to_async(on_threads)(alice)
    assert on_the_loop.value.code == on_a_thread.value.code == code


async def test_a_token_of_another_user_is_refused(alice, bob):
    claims = claims_of(alice)
    forged = type(claims)(user_id=bob.user.public_id, sid=claims.sid, expires_at=claims.expires_at)
    with pytest.raises(ApplicationError) as refused:
        await reader.connection_open(claims=forged, kinds=GREETING_KINDS)
    assert refused.value.code == ErrorCode.AUTHENTICATION_FAILED


async def test_first_party_authentication_reads_on_the_loop_not_on_a_read_thread(
    alice, settings, monkeypatch
):
    settings.CHAT = {**settings.CHAT, "HANDSHAKE_READ_ON_LOOP": True}

    def no_thread(*args, **kwargs):
        raise AssertionError("the read went to a read thread")

    monkeypatch.setattr("gateway.auth.call_read", no_thread)
    subscribed = []

    async def before_read(user_id):
        subscribed.append(user_id)

    credentials = Credentials(alice.access, None, renewable=False)
    authed = await authenticate(credentials=credentials, policy=FIRST_PARTY_POLICY, before_read=before_read)
    assert authed.user.public_id == alice.user.public_id == subscribed[0]
    assert authed.snapshot is not None and authed.session_id == claims_of(alice).sid


async def test_a_claimed_id_of_someone_else_is_refused_on_the_loop(alice, bob, settings):
    settings.CHAT = {**settings.CHAT, "HANDSHAKE_READ_ON_LOOP": True}
    credentials = Credentials(alice.access, None, renewable=False, claimed_id=bob.user.public_id)

    async def before_read(user_id):
        pass

    with pytest.raises(ApplicationError) as refused:
        await authenticate(credentials=credentials, policy=FIRST_PARTY_POLICY, before_read=before_read)
    assert refused.value.code == ErrorCode.AUTHENTICATION_FAILED


async def test_a_lost_connection_fails_one_read_and_the_next_opens_a_fresh_one(alice):
    await on_loop(alice)
    (connection,) = reader.reader._idle
    cursor = await connection.execute("SELECT pg_backend_pid()")
    pid = (await cursor.fetchone())[0]

    def terminate():
        from django.db import connection as django_connection

        with django_connection.cursor() as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])

    await sync_to_async(terminate)()
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a lost server
        await on_loop(alice)
    assert not reader.reader._idle  # the broken one was closed, not kept
    user, _snapshot = await on_loop(alice)
    assert user.public_id == alice.user.public_id


async def test_reads_past_the_connection_limit_wait_their_turn(alice, bob, settings):
    settings.CHAT = {**settings.CHAT, "HANDSHAKE_READ_CONNECTIONS": 1}
    found = await asyncio.gather(*(on_loop(someone) for someone in (alice, bob, alice, bob)))
    assert [user.public_id for user, _ in found] == [alice.user.public_id, bob.user.public_id] * 2
    assert len(reader.reader._idle) == 1  # one connection served all four


async def prepared_names(connection) -> set[str]:
    cursor = await connection.execute("SELECT name FROM pg_prepared_statements")
    return {name for (name,) in await cursor.fetchall()}


async def test_the_read_runs_by_name_once_prepared(alice, settings):
    settings.CHAT = {**settings.CHAT, "HANDSHAKE_READ_PREPARED": True}
    await on_loop(alice)
    (connection,) = reader.reader._idle
    names = await prepared_names(connection)
    assert len([name for name in names if name.startswith("chat_handshake_")]) == 2
    user, snapshot = await on_loop(alice)  # by name: the same answer
    assert user.public_id == alice.user.public_id
    assert snapshot == (await sync_to_async(on_threads)(alice)).snapshot
    assert await prepared_names(connection) == names  # nothing prepared twice


async def test_statements_the_session_lost_are_prepared_again(alice, settings):
    settings.CHAT = {**settings.CHAT, "HANDSHAKE_READ_PREPARED": True}
    await on_loop(alice)
    (connection,) = reader.reader._idle
    await connection.execute("DEALLOCATE ALL")  # as `DISCARD ALL` or a pooler's reset would
    user, _snapshot = await on_loop(alice)
    assert user.public_id == alice.user.public_id
    assert reader.reader._idle == [connection]  # the same connection, not a failure
    assert any(name.startswith("chat_handshake_") for name in await prepared_names(connection))


async def test_nothing_is_prepared_when_the_setting_is_off(alice, settings):
    settings.CHAT = {**settings.CHAT, "HANDSHAKE_READ_PREPARED": False}
    user, _snapshot = await on_loop(alice)
    assert user.public_id == alice.user.public_id
    (connection,) = reader.reader._idle
    assert not await prepared_names(connection)
