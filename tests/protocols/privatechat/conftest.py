"""The private chat mount on live servers: added by CHAT_PROTOCOLS for one app on the host name
127.0.0.1 (the app's `io(url)` sends `Host: 127.0.0.1:<port>`), beside ExpressChat's "/" and
"/apps" for every other host name. The app's id is fixed, so each test can make it again after
the database is flushed."""

import json

import pytest

from accounts.models import App
from tests.conftest import PAIR_ENV, REDIS_URL, _start_servers, require_redis

APP_ID = "a001a001a001a001a001a001"
HOST = "127.0.0.1"
EXPRESSCHAT_HOST = "expresschat.test"

MOUNTS = [
    {
        "protocol": "gateway.protocols.privatechat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
        "host": HOST,
        "realm": "apps",
        "credentials": ["id_handle"],
        "apps": [APP_ID],
    },
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
    },
    {
        "protocol": "gateway.protocols.expresschat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/apps",
        "realm": "apps",
        "credentials": ["tenant_jwt", "registered_token", "id_handle"],
    },
]
LIVE_ENV = {
    "CHAT_PROTOCOLS": json.dumps(MOUNTS),
    "CHAT_TYPING_MIN_INTERVAL_SECONDS": "0",
    "CHAT_PRESENCE_DEBOUNCE_SECONDS": "0.1",
    # The malformed-input test sends every event with eight bad argument lists on one socket.
    "CHAT_SOCKET_RATE_BURST": "1000",
    "CHAT_USER_RATE_BURST": "2000",
}


@pytest.fixture
def app(transactional_db):
    """The private chat app (made again for each test: live tests flush the database)."""
    return App.objects.create(public_id=APP_ID, name="Private chat")


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(1, tmp_path_factory.mktemp("privatechat"), REDIS_URL, LIVE_ENV)
    yield servers[0]
    servers[0].stop()


@pytest.fixture(scope="module")
def server_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two server processes with the mount, sharing Redis (the bus) and the database."""
    require_redis()
    servers = _start_servers(
        2, tmp_path_factory.mktemp("privatechat-pair"), REDIS_URL, {**PAIR_ENV, **LIVE_ENV}
    )
    yield servers
    for one in servers:
        one.stop()
