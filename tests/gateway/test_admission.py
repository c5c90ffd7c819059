"""Admission control (gateway/asgi.py): while CHAT HANDSHAKES_MAX_IN_FLIGHT handshakes are in
progress, a new session is refused before any protocol sees it, the way clients retry from."""

import json

import pytest
from django.core.asgi import get_asgi_application

from gateway.asgi import Gateway
from tests.ops.test_drain_inprocess import Asgi, _scope

# The sessions opened here end after the test, through the hubs (presence, the database).
pytestmark = pytest.mark.django_db

NEW_SESSION = ("/socket.io/", b"EIO=4&transport=polling")


@pytest.fixture
def gateway():
    return Gateway(get_asgi_application())


def _limit(settings, limit: int) -> None:
    settings.CHAT = {**settings.CHAT, "HANDSHAKES_MAX_IN_FLIGHT": limit}


async def _open(gateway) -> list:
    return await Asgi(gateway)(_scope("http", *NEW_SESSION), {"type": "http.request", "body": b""})


async def test_a_new_session_is_refused_while_the_hubs_are_full_of_handshakes(gateway, settings):
    _limit(settings, 2)
    gateway.hubs[0].started.update({"a": 0.0, "b": 0.0})
    sent = await _open(gateway)
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"])["code"] == "too_many_connections"
    gateway.hubs[0].started.clear()
    assert (await _open(gateway))[0]["status"] == 200


async def test_a_burst_of_new_sessions_counts_before_reaching_a_hub(gateway, settings):
    _limit(settings, 3)
    statuses = [(await _open(gateway))[0]["status"] for _ in range(4)]
    assert statuses == [200, 200, 200, 503]


async def test_requests_of_open_sessions_pass_a_full_gateway(gateway, settings):
    _limit(settings, 1)
    gateway.hubs[0].started["a"] = 0.0
    sent = await Asgi(gateway)(
        _scope("http", "/socket.io/", b"EIO=4&transport=polling&sid=unknown"),
        {"type": "http.request", "body": b""},
    )
    assert sent[0]["status"] == 400  # python-engineio's answer for an unknown session, not ours


async def test_zero_means_no_limit(gateway, settings):
    _limit(settings, 0)
    gateway.hubs[0].started.update({str(i): 0.0 for i in range(100)})
    assert (await _open(gateway))[0]["status"] == 200
