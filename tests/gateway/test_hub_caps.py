"""The per-address cap counts handshakes still being authenticated: concurrent handshakes from
one address cannot all pass a check made before their first await. In process, on a recording
transport, with authentication held until every handshake has started."""

import asyncio

import pytest
from django.test import override_settings

from gateway import hub as hub_module
from gateway.auth import Authenticated, Credentials
from gateway.bridge import bridge
from gateway.hub import Hub
from gateway.protocol import Protocol
from gateway.transports.handshake import Handshake

from .test_hub_hooks import Recorder

ADDRESS = "192.0.2.9"


class Plain(Protocol):
    name = "plain"
    handlers = {}

    def credentials(self, handshake: Handshake) -> Credentials:
        return Credentials(handshake.auth, None, renewable=False)


@pytest.fixture
def held_authentication(make_user, monkeypatch):
    users = [make_user().user for _ in range(6)]
    release = asyncio.Event()

    async def authenticate(*, credentials, policy, before_read=None):
        # Holds no bus subscription and reads no snapshot (`before_read` unused): the hub then
        # subscribes and reads at `greet`, as for a tenant's mount.
        await release.wait()
        user = users[int(credentials.access)]
        return Authenticated(user=user, session_id="s", expires_at=0, refresh_token=None, new_access=None)

    monkeypatch.setattr(hub_module, "authenticate", authenticate)
    return release


@pytest.mark.django_db(transaction=True)
async def test_concurrent_handshakes_from_one_address_respect_its_cap(held_authentication):
    hub = Hub(Plain(), Recorder([]))
    chat = {**hub_module.settings.CHAT, "SOCKET_MAX_PER_ADDRESS": 3}
    with override_settings(CHAT=chat):
        pending = [
            asyncio.create_task(hub.connect(f"c{n}", Handshake(auth=str(n), headers={}, remote=ADDRESS)))
            for n in range(6)
        ]
        await asyncio.sleep(0)  # every handshake has passed (or failed) the cap check
        held_authentication.set()
        admissions = await asyncio.gather(*pending)
    try:
        # Refused ones are told after CONNECT (this protocol's refusal style), so count who got in.
        assert len(admissions) == 6 and sorted(hub.connections) == ["c0", "c1", "c2"]
        assert sorted(hub.refusing) == ["c3", "c4", "c5"]
        assert hub_module.live_by_address[ADDRESS] == 3
        assert ADDRESS not in hub_module.connecting_by_address
    finally:
        for n in range(6):
            await hub.forget(f"c{n}")
        bridge._sinks.remove(hub)  # the bridge keeps its sinks for the process's life
    assert ADDRESS not in hub_module.live_by_address
