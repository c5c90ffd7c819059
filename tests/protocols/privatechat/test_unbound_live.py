"""Unbound sockets are bounded in time (CHAT_SOCKET_UNBOUND_SECONDS): one that never sends a
handle is closed, one that binds stays. python-socketio's client against a live server started
with a short deadline."""

import asyncio

import pytest

from accounts import app_logins, tenancy
from tests.conftest import REDIS_URL, _start_servers

from .conftest import HOST, LIVE_ENV
from .test_revocation_live import WAIT, AppSocket

pytestmark = pytest.mark.django_db(transaction=True)
DEADLINE = 1.5  # seconds


@pytest.fixture(scope="module")
def quick_server(django_db_setup, django_db_blocker, tmp_path_factory):
    env = {**LIVE_ENV, "CHAT_SOCKET_UNBOUND_SECONDS": str(DEADLINE)}
    servers = _start_servers(1, tmp_path_factory.mktemp("privatechat-unbound"), REDIS_URL, env)
    yield servers[0]
    servers[0].stop()


async def test_a_socket_that_never_binds_is_closed_one_that_binds_stays(quick_server, app):
    await asyncio.to_thread(
        app_logins.app_user_register, app=app, username="patient", password="a long password 1"
    )
    issued = await asyncio.to_thread(tenancy.id_handle_issue, app=app, external_id="patient")
    url = f"http://{HOST}:{quick_server.port}"
    idle, phone = AppSocket(), AppSocket()
    await idle.sio.connect(url, transports=["polling", "websocket"])
    await phone.sio.connect(url, transports=["polling", "websocket"])
    await idle.sio.emit("get active chats", "not-a-handle-of-anyone-at-all")  # binds nothing
    await phone.sio.emit("identity", issued.secret)
    await asyncio.wait_for(idle.gone.wait(), DEADLINE + WAIT)
    assert not idle.sio.connected and idle.got.empty()
    await asyncio.sleep(DEADLINE)  # past the deadline of the bound one too
    assert phone.sio.connected and not phone.gone.is_set()
    await phone.sio.emit("get active chats", issued.secret)
    event, args = await asyncio.wait_for(phone.got.get(), WAIT)
    assert (event, args) == ("get active chats", ([],))
    await phone.sio.disconnect()
