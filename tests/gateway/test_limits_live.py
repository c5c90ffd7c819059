"""Event size limits and refused packet kinds, on a live server with real clients."""

import asyncio
import json

import pytest
import websockets

from tests.realtime.clients import connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_event_over_the_protocol_limit_gets_payload_too_large_and_the_connection_stays(
    live_server_proc, alice, bob
):
    client = await connect_greeted(live_server_proc, alice)
    chat_id = ok(await client.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
    big = "x" * 200_000  # over the 64 KiB protocol limit, under Socket.IO's 1 MiB ceiling
    ack = await client.call("send-personal-message", {"ChatId": chat_id, "Content": big})
    assert ack["ok"] is False and ack["error"]["code"] == "payload_too_large"
    error = await client.next("error")
    assert (error["code"], error["event"]) == ("payload_too_large", "send-personal-message")
    # Still connected, and nothing was stored.
    sent = ok(await client.call("send-personal-message", {"ChatId": chat_id, "Content": "small"}))
    assert sent["Seq"] == 1
    await client.close()


async def test_a_packet_over_the_transport_ceiling_drops_the_connection(live_server_proc, alice):
    client = await connect_greeted(live_server_proc, alice)
    await client.emit("send-self-message", {"Content": "x" * (1024 * 1024 + 10)})
    for _ in range(100):
        if not client.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not client.sio.connected


async def _raw_socket(server, token: str):
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(url)
    assert (await ws.recv()).startswith("0{")  # Engine.IO open
    await ws.send("40" + json.dumps({"token": token}))
    assert (await ws.recv()).startswith("40")  # namespace connected
    return ws


async def test_a_binary_event_over_the_protocol_limit_gets_payload_too_large_and_the_connection_stays(
    live_server_proc, alice
):
    client = await connect_greeted(live_server_proc, alice)
    ack = await client.call("send-self-message", {"Content": b"x" * 100_000})  # one attachment
    assert ack["ok"] is False and ack["error"]["code"] == "payload_too_large"
    ack = await client.call("send-self-message", {"Content": b"x"})  # under it: ExpressChat's own check
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    assert (
        ok(await client.call("send-self-message", {"Content": "text"}))["Seq"] == 1
    )  # nothing stored before
    await client.close()


async def test_binary_attachments_past_the_transport_ceiling_close_the_session_and_are_never_buffered(
    live_server_proc, alice
):
    """A header may announce attachments, each under the 1 MiB frame limit, that together pass
    it: the session is closed when the total does, and what was held until then is bounded by
    the 64 KiB event limit (attachments past it are dropped as they arrive): no 100 MB buffers."""
    ws = await _raw_socket(live_server_proc, alice.access)
    placeholders = ",".join(f'{{"_placeholder":true,"num":{n}}}' for n in range(10))
    await ws.send(f'4510-["send-self-message",{placeholders}]')
    closed = False
    try:
        for _ in range(10):
            await ws.send(b"x" * 200_000)
        for _ in range(50):  # greeting events may come first; then Engine.IO's CLOSE packet
            if await asyncio.wait_for(ws.recv(), 5) == "1":
                closed = True
                break
    except websockets.ConnectionClosed:
        closed = True
    assert closed
    await ws.close()


async def test_a_flood_of_non_event_packets_is_rate_limited_and_closed(live_server_proc, alice, bob):
    bystander = await connect_greeted(live_server_proc, bob)
    ws = await _raw_socket(live_server_proc, alice.access)
    closed = False
    try:
        for i in range(2000):  # acks nobody asked for: no event, so no event budget before
            await ws.send(f"43{i}[]")
        for _ in range(200):
            if await asyncio.wait_for(ws.recv(), 5) == "1":
                closed = True
                break
    except websockets.ConnectionClosed:
        closed = True
    assert closed
    assert (await bystander.call("fetch-user-details"))["ok"]
    await bystander.close()


async def test_a_long_polling_post_over_the_ceiling_gets_413_at_once_and_ends_its_session(live_server_proc):
    import time

    import aiohttp

    base = live_server_proc.url + "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as opened:
            sid = json.loads((await opened.text())[1:])["sid"]
        started = time.monotonic()
        async with http.post(f"{base}&sid={sid}", data="4" + "x" * (1024 * 1024 + 10)) as refused:
            assert refused.status == 413
            assert (await refused.json())["code"] == "payload_too_large"
        assert time.monotonic() - started < 5  # not after a ping timeout
        async with http.get(f"{base}&sid={sid}") as after:
            assert after.status == 400  # the session is gone
