"""The CHAT SERVER mount on a live server: added by CHAT_PROTOCOLS on the host name 127.0.0.1,
before ExpressChat's "/" on the same path (which keeps every other host name)."""

import json

import pytest

from tests.conftest import REDIS_URL, _start_servers

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


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(
        1,
        tmp_path_factory.mktemp("chatserver"),
        REDIS_URL,
        {"CHAT_PROTOCOLS": json.dumps(MOUNTS), "CHAT_TYPING_MIN_INTERVAL_SECONDS": "0"},
    )
    yield servers[0]
    servers[0].stop()
