"""The default mounts of seed 002 and the heartbeat of the Engine.IO 3 server they share."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from chatproject.ops.logs import redact
from gateway.asgi import _eio3_site
from gateway.protocols.roomtoken.protocol import PROTOCOL
from gateway.registry import mounts
from gateway.transports.handshake import Handshake


def site(path: str):
    return [m for m in mounts() if m.transport == "eio3" and m.path == path]


def test_both_namespaces_are_mounted_for_handles_and_tenant_tokens():
    found = {m.namespace: m for m in mounts() if m.policy.protocol == "roomtoken"}
    assert set(found) == {"/customer", "/artisans"}
    for mount in found.values():
        assert (mount.path, mount.policy.realm, mount.policy.forms) == (
            "/socket.io/",
            "apps",
            ("id_handle", "tenant_jwt"),
        )


def test_the_shared_site_takes_the_heartbeat_its_mounts_set():
    shared = site("/socket.io/")
    assert {m.policy.protocol for m in shared} == {"czmessenger", "roomtoken"}
    server, hubs = _eio3_site(shared)
    assert (server.ping_interval, server.ping_timeout) == (25, 60) and len(hubs) == len(shared)


def test_mounts_of_one_site_must_agree_on_the_heartbeat(settings):
    entry = {"protocol": "gateway.protocols.roomtoken", "transport": "eio3", "path": "/x/", "realm": "apps"}
    settings.CHAT = {
        **settings.CHAT,
        "PROTOCOLS": [
            entry | {"namespace": "/customer", "ping_interval": 25},
            entry | {"namespace": "/artisans", "ping_interval": 10},
        ],
    }
    with pytest.raises(ImproperlyConfigured):
        _eio3_site(mounts())


@pytest.mark.parametrize(
    ("query", "handle", "token"),
    [
        ({"userId": "H"}, "H", None),
        ({"customerID": "H"}, "H", None),
        ({"vendorID": "H"}, "H", None),
        ({"userId": "H", "customerID": "X"}, "H", None),
        ({"customerID": "H", "vendorID": "X"}, "H", None),  # the README's order: customerID first
        ({"userId": "", "customerID": "", "vendorID": "H"}, "H", None),  # empty is missing
        ({"userId": ""}, None, None),
        ({"token": "T", "userId": "H"}, None, "T"),
        ({}, None, None),
    ],
)
def test_credentials_come_from_the_query(query, handle, token):
    handshake = Handshake(auth=None, headers={}, query=query, transport="eio3", namespace="/artisans")
    credentials = PROTOCOL.credentials(handshake)
    assert (credentials.handle, credentials.access) == (handle, token)
    state = PROTOCOL.new_state(handshake)
    assert state.namespace == "artisans" and state.self_id == (handle or "")


@pytest.mark.parametrize(
    "line",
    [
        '"GET /v1/chat/?roomToken=t&namespace=customer&userId=HANDLE-SECRET-0123456789 HTTP/1.1" 200',
        "GET /socket.io/?customerID=HANDLE-SECRET-0123456789&EIO=3&transport=websocket",
        "query {'vendorID': 'HANDLE-SECRET-0123456789'}",
    ],
)
def test_handles_in_query_strings_are_redacted_from_logs(line):
    """These clients send their handle as `userId` (or the README's keys): a credential here."""
    out = redact(line)
    assert "HANDLE-SECRET" not in out and "[REDACTED]" in out
