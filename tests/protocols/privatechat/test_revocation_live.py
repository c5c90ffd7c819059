"""An admin (or the tenant) revokes a stolen handle: the socket it bound closes at once, and the
handle binds nothing any more. python-socketio's client against a live server."""

import asyncio
import json
import urllib.request

import pytest
import socketio

from accounts import app_logins, tenancy

from .conftest import HOST

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 10  # seconds: an upper bound for a step, not a measurement


class AppSocket:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.got: asyncio.Queue = asyncio.Queue()
        self.gone = asyncio.Event()

        @self.sio.on("*")
        async def any_event(event, *args):
            await self.got.put((event, args))

        @self.sio.event
        async def disconnect(*_):
            self.gone.set()


def revoke(server, app, handle_id: str) -> None:
    request = urllib.request.Request(
        f"{server.url}/api/tenant/v1/handles/{handle_id}",
        method="DELETE",
        headers={"Authorization": f"AppKey {app.public_id}:{app.secret_1}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        json.load(response)


async def test_revoking_the_handle_closes_the_socket_it_bound(server, app):
    await asyncio.to_thread(
        app_logins.app_user_register, app=app, username="victim", password="a long password 1"
    )
    issued = await asyncio.to_thread(tenancy.id_handle_issue, app=app, external_id="victim")
    phone = AppSocket()
    await phone.sio.connect(f"http://{HOST}:{server.port}", transports=["polling", "websocket"])
    await phone.sio.emit("identity", issued.secret)
    await phone.sio.emit("get active chats", issued.secret)
    event, args = await asyncio.wait_for(phone.got.get(), WAIT)
    assert (event, args) == ("get active chats", ([],))
    await asyncio.to_thread(revoke, server, app, issued.handle.public_id)
    await asyncio.wait_for(phone.gone.wait(), WAIT)
    assert not phone.sio.connected
