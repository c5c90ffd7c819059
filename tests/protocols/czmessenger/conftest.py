import shutil
from pathlib import Path

import pytest

from accounts import tenancy
from gateway.protocols.czmessenger import directory
from tests.conftest import require_node_package

ROOT = Path(__file__).resolve().parents[3]
NODE = shutil.which("node")

# The mounts of the default settings, on the apps realm (tenant-signed tokens).
MOUNTS = [
    {
        "protocol": "gateway.protocols.czmessenger",
        "transport": "eio3",
        "path": "/v1/conversations/sockets/",
        "namespace": "/v1/conversations/events",
        "realm": "apps",
    },
    {
        "protocol": "gateway.protocols.czmessenger",
        "transport": "eio3",
        "path": "/socket.io/",
        "namespace": "/messenger",
        "realm": "apps",
    },
]


@pytest.fixture(autouse=True)
def _fresh_directory():
    directory.clear()
    yield
    directory.clear()


@pytest.fixture
def market(db):
    """A marketplace app with a buyer b9 and a seller u1."""
    app = tenancy.app_create(name="Chozoi")
    buyer = tenancy.external_user_upsert(app=app, external_id="b9", name="Le Vuong")[0]
    seller = tenancy.external_user_upsert(app=app, external_id="u1", name="Shop U1")[0]
    return app, buyer, seller


def node_required():
    require_node_package("socket.io-client-v2", "2.3.1")
