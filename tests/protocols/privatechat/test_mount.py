"""The mount (issue 18): the app also claims "/" on /socket.io/, so the registry refuses it
beside ExpressChat's "/" unless it has its own port or host name; its REST serves one app."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from gateway.protocols.privatechat.rest import mount_app_id
from gateway.registry import mounts

from .conftest import APP_ID

EXPRESSCHAT = {"protocol": "gateway.protocols.expresschat", "transport": "eio4", "path": "/socket.io/"}


def privatechat(**extra) -> dict:
    return {
        "protocol": "gateway.protocols.privatechat",
        "transport": "eio4",
        "path": "/socket.io/",
        "namespace": "/",
        "realm": "apps",
        "credentials": ["id_handle"],
        "apps": [APP_ID],
        **extra,
    }


def test_without_its_own_port_or_host_the_mount_is_refused(settings):
    settings.CHAT = {**settings.CHAT, "PROTOCOLS": [EXPRESSCHAT, privatechat()]}
    with pytest.raises(ImproperlyConfigured, match="both claim /socket.io/"):
        mounts()


@pytest.mark.parametrize("own", [{"port": 3000}, {"host": "chat-app.example"}])
def test_on_its_own_port_or_host_it_is_mounted(settings, own):
    settings.CHAT = {**settings.CHAT, "PROTOCOLS": [EXPRESSCHAT, privatechat(**own)]}
    (mount,) = [m for m in mounts() if m.protocol == "gateway.protocols.privatechat"]
    assert (mount.port, mount.host) == (own.get("port"), own.get("host"))
    assert mount_app_id() == APP_ID


@pytest.mark.parametrize("apps", [None, [APP_ID, "b002b002b002b002b002b002"]])
def test_its_rest_needs_exactly_one_app(settings, apps):
    entry = privatechat(port=3000)
    if apps is None:
        del entry["apps"]
    else:
        entry["apps"] = apps
    settings.CHAT = {**settings.CHAT, "PROTOCOLS": [EXPRESSCHAT, entry]}
    with pytest.raises(ImproperlyConfigured, match="exactly one app"):
        mount_app_id()
