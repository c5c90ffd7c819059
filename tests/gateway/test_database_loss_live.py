"""A lost PostgreSQL connection under a batched send is retried once on a fresh connection: the
client gets its ack, not internal_error (issue: hardening, item 8)."""

import subprocess

import pytest
from django.db import connection

from tests.conftest import REDIS_URL, REQUIRE_SERVICES, _start_servers
from tests.realtime.clients import connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def persistent_server(django_db_setup, django_db_blocker, tmp_path_factory):
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("DATABASE_URL (PostgreSQL) is required in CI")
        pytest.skip("needs PostgreSQL: terminates the server's database connections")
    # Persistent connections, as in production (the test servers' default is 0).
    servers = _start_servers(1, tmp_path_factory.mktemp("dbloss"), REDIS_URL, {"DATABASE_CONN_MAX_AGE": "60"})
    yield servers[0]
    servers[0].stop()


def _server_ports(pid: int) -> list[int]:
    """The local ports of the server process's connections to PostgreSQL (from `ss`)."""
    listing = subprocess.run(
        ["ss", "-tnpH", "dport = :5432"], capture_output=True, text=True, check=True
    ).stdout
    return [int(line.split()[3].rsplit(":", 1)[1]) for line in listing.splitlines() if f"pid={pid}," in line]


def _terminate_server_backends(server) -> int:
    ports = _server_ports(server.proc.pid)
    if not ports:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND client_port = ANY(%s)",
            [ports],
        )
        return cursor.fetchone()[0]


async def test_sends_survive_terminated_database_connections(persistent_server, alice, bob):
    client = await connect_greeted(persistent_server, alice)
    chat_id = ok(await client.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
    for round_ in range(3):
        ok(await client.call("send-personal-message", {"ChatId": chat_id, "Content": f"before {round_}"}))
        assert _terminate_server_backends(persistent_server) >= 1  # its persistent connection
        sent = await client.call("send-personal-message", {"ChatId": chat_id, "Content": f"after {round_}"})
        assert sent["ok"], sent
    await client.close()
