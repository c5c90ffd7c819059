"""The CHAT SERVER mount on a live server: added by CHAT_PROTOCOLS on the host name 127.0.0.1,
before ExpressChat's "/" on the same path (which keeps every other host name)."""

import json

import pytest

from tests.conftest import PAIR_ENV, REDIS_URL, _start_servers, require_redis

MOUNTS = [
    {
        "protocol": "gateway.protocols.chatserver",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
        "host": "127.0.0.1",
        "realm": "apps",
        "credentials": ["registered_token"],
    },
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
    },
]


LIVE_ENV = {
    "CHAT_PROTOCOLS": json.dumps(MOUNTS),
    "CHAT_TYPING_MIN_INTERVAL_SECONDS": "0",
    # The dashboard has no default secret with DEBUG off (test_dashboard.py logs in live).
    "CHAT_DASHBOARD_JWT_SECRET": "live-dashboard-secret-0123456789abcdef",
}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(
        1,
        tmp_path_factory.mktemp("chatserver"),
        REDIS_URL,
        LIVE_ENV,
    )
    yield servers[0]
    servers[0].stop()


@pytest.fixture(scope="module")
def server_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two server processes with the mount, sharing Redis (the bus) and the database."""
    require_redis()
    servers = _start_servers(
        2, tmp_path_factory.mktemp("chatserver-pair"), REDIS_URL, {**PAIR_ENV, **LIVE_ENV}
    )
    yield servers
    for one in servers:
        one.stop()
