"""/ws/ connections never turn into ghosts: a frame the parser chokes on, or a client that
closes while its acks are in flight, leaves the process routing to everyone else and the user's
presence right (issue: hardening, item 2)."""

import asyncio

import pytest

from tests.realtime.clients import SioClient, WsClient, ok

pytestmark = pytest.mark.django_db(transaction=True)


def bearer(chat_user) -> dict:
    return {"Authorization": f"Bearer {chat_user.access}"}


async def _group(owner: SioClient, members) -> str:
    ack = ok(await owner.call("create-group-chat", {"Name": "G", "Participants": [m.id for m in members]}))
    return ack["GroupId"]


async def test_a_deeply_nested_frame_is_refused_and_the_connection_keeps_working(live_server_proc, make_user):
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    owner = await SioClient().connect(live_server_proc.url, token=carol.access)
    await owner.next("group-chat-list")
    a = await WsClient().connect(live_server_proc.url, headers=bearer(alice))
    b = await WsClient().connect(live_server_proc.url, headers=bearer(bob))
    for ws in (a, b):
        await ws.next("group-chat-list")
    group_id = await _group(owner, [alice, bob])
    await a.send_raw("[" * 5000 + "]" * 5000)
    assert (await a.next("error"))["code"] == "invalid"
    for round_ in range(20):  # every group message still reaches both /ws/ members
        ok(await owner.call("send-group-message", {"GroupId": group_id, "Content": f"m{round_}"}))
        for ws in (a, b):
            assert (await ws.next("receive-group-message"))["Content"] == f"m{round_}"
    assert ok(await a.call("fetch-user-details"))["Id"] == alice.id
    for client in (a, b, owner):
        await client.close()


async def test_closing_while_acks_are_in_flight_forgets_the_connection(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    watcher = await SioClient().connect(live_server_proc.url, token=bob.access)
    await watcher.next("group-chat-list")
    ok(await watcher.call("create-personal-chat", {"Receiver": alice.id}))
    a = await WsClient().connect(live_server_proc.url, headers=bearer(alice))
    await a.next("group-chat-list")
    for _ in range(30):  # acks asked for and never read: the socket closes under them
        await a.send_raw('{"event": "sync", "data": {"All": true}, "ack": 1}')
    await a.close()
    for _ in range(100):  # presence follows the close (it would stay "foreground" for a ghost)
        found = ok(await watcher.call("fetch-presence", {"UserIds": [alice.id]}))["Users"]
        if found and found[0]["State"] == "offline":
            break
        await asyncio.sleep(0.1)
    assert found[0]["State"] == "offline"
    await watcher.close()
