"""Malformed Socket.IO packets and odd payloads get a clean answer or a clean close, never a
traceback in the log (issue: hardening, item 3)."""

import asyncio
import json

import pytest
import websockets

from tests.realtime.clients import SioClient, connect_greeted

pytestmark = pytest.mark.django_db(transaction=True)

# Socket.IO packets python-socketio cannot decode or dispatch (6: over the limit of 5).
MALFORMED = ["42", "4x", '42[{"a":1}]', '42[["a"],{}]', "42[", '42{"a":1}']
# Engine.IO packets python-engineio cannot decode: it closes the session itself.
ENGINE_MALFORMED = ["9", "4" + "[" * 3000]


def _log_size(server) -> int:
    server._log_file.flush()
    return server.log.stat().st_size


def _log_since(server, offset: int) -> str:
    server._log_file.flush()
    with open(server.log, "rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


async def _raw(server, token: str):
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(url)
    assert (await ws.recv()).startswith("0{")
    await ws.send("40" + json.dumps({"token": token}))
    assert (await ws.recv()).startswith("40")
    return ws


async def _closed(ws) -> bool:
    try:
        for _ in range(100):
            if await asyncio.wait_for(ws.recv(), 5) == "1":  # Engine.IO CLOSE
                return True
    except websockets.ConnectionClosed:
        return True
    return False


async def test_malformed_packets_are_dropped_quietly_and_a_repeating_client_is_closed(
    live_server_proc, alice, bob
):
    start = _log_size(live_server_proc)
    bystander = await connect_greeted(live_server_proc, bob)
    ws = await _raw(live_server_proc, alice.access)
    for packet in MALFORMED:
        await ws.send(packet)
    assert await _closed(ws)
    await asyncio.sleep(0.3)
    log = _log_since(live_server_proc, start)
    assert "Traceback" not in log
    # One warning per connection, not one per packet (and Engine.IO's own close, one line).
    assert log.count("malformed socket.io packet dropped") == 1
    # Engine.IO-level garbage closes the session at once, with one warning line.
    for packet in ENGINE_MALFORMED:
        ws = await _raw(live_server_proc, alice.access)
        await ws.send(packet)
        assert await _closed(ws)
    await asyncio.sleep(0.3)
    assert "Traceback" not in _log_since(live_server_proc, start)
    # Everyone else is unaffected.
    assert (await bystander.call("fetch-user-details"))["ok"]
    await bystander.close()


async def test_odd_values_in_payloads_and_tokens_are_invalid_not_internal_errors(live_server_proc, alice):
    start = _log_size(live_server_proc)
    client = await connect_greeted(live_server_proc, alice)
    for payload, field in (
        ({"Name": "a", "Type": {"x": 1}}, "Type"),
        ({"Name": "a", "Type": ["Search"]}, "Type"),
        ({"Name": "\ud800", "Type": "Search"}, "Name"),
    ):
        ack = await client.call("search-user", payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", (payload, ack)
        assert ack["error"]["extra"]["field"] == field
    await client.close()
    refused = SioClient()
    await refused.connect(live_server_proc.url, token="\ud800" + alice.access)
    assert (await refused.next("auth-failure"))["code"] == "authentication_failed"
    await refused.close()
    assert "Traceback" not in _log_since(live_server_proc, start)
