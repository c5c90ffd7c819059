import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from accounts import tenancy
from gateway.protocols.roomtoken import directory, selves
from tests.conftest import require_node_package

ROOT = Path(__file__).resolve().parents[3]
NODE = shutil.which("node")


@dataclass
class Party:
    id: str  # the user's id in the app (what others see)
    handle: str  # the id handle the marketplace backend obtained (what the app sends as userId)
    handle_id: str
    user: object

    def wire(self) -> dict[str, str]:
        return {"id": self.id, "handle": self.handle}


@pytest.fixture(autouse=True)
def _fresh_caches():
    directory.clear()
    selves.clear()
    yield
    directory.clear()
    selves.clear()


def party(app, external_id: str, name: str) -> Party:
    user = tenancy.external_user_upsert(app=app, external_id=external_id, name=name)[0]
    issued = tenancy.id_handle_issue(app=app, external_id=external_id)
    return Party(external_id, issued.secret, issued.handle.public_id, user)


@pytest.fixture
def market(db):
    """A marketplace app with a customer c1, an artisan a1 and a stranger s1, each with a handle."""
    app = tenancy.app_create(name="Artisans market")
    return app, party(app, "c1", "Carla"), party(app, "a1", "Arto"), party(app, "s1", "Sneaky")


def node_required():
    require_node_package("socket.io-client-v2", "2.3.1")
    require_node_package("socket.io-client", "4.0.1")
