"""CHAT SERVER on two server processes sharing Redis: two members of one room, each connected to
a different process, hear each other (messages, typing, seen, join and leave announcements,
`roomData` from shared presence). Skipped without REDIS_URL, failed without it when
CHAT_REQUIRE_SERVICES=1."""

import base64

import pytest

from accounts import tenancy

from .test_live import Client, register, rest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_two_members_on_two_processes_share_a_room(server_pair):
    one, two = server_pair
    app = tenancy.app_create(name="Pair")
    ann, bob = register(one, app, 1, "pair-ann-token", "Ann"), register(two, app, 2, "pair-bob-token", "Bob")
    status, room = rest(one, app, "POST", "/room", {"room": "pair", "appId": app.public_id, "users": [1, 2]})
    assert status == 200
    a, b = await Client().connect(one, "pair-ann-token"), await Client().connect(two, "pair-bob-token")
    try:
        await a.emit("join", "pair")
        assert await a.next("info") == "You have joined the room"
        await a.next("room_info")
        await a.next("roomData")
        await b.emit("join", "pair")
        await b.next("room_info")
        assert await a.next("info") == f"{bob['id']} has joined!"
        for client in (a, b):  # presence is shared: each process sees the other's member online
            assert {u["sender"] for u in (await client.next("roomData"))["users"]} == {ann["id"], bob["id"]}
        await a.emit("send_message", "from process one")
        await b.emit("send_message", "from process two")
        for client in (a, b):
            messages = [await client.next("message") for _ in range(2)]
            assert {base64.b64decode(m["message"]).decode() for m in messages} == {
                "from process one",
                "from process two",
            }
            assert {m["roomId"] for m in messages} == {room["id"]}
        await b.emit("typing", True)
        assert (await a.next("is_typing"))["data"]["id"] == bob["id"]
        await a.emit("seen")
        assert (await b.next("seen_by"))["id"] == ann["id"]
        await b.close()  # without `leave`: announced across processes too
        assert await a.next("info") == f"{bob['id']} has left"
        assert {u["sender"] for u in (await a.next("roomData"))["users"]} == {ann["id"]}
    finally:
        await a.close()
        await b.close()
