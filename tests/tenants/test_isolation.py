"""Isolation of realms, as a matrix: every REST endpoint that takes an id, and every ExpressChat
event, called by a user of one realm with the ids of another realm's users, conversations,
messages and uploads, gets not-found (or, for reads that filter, nothing), leaks none of them,
and stores nothing. Realms: app A, app B, the first-party realm; both directions."""

import asyncio
import json

import pytest
from rest_framework.test import APIClient

from tests.conftest import REDIS_URL, _start_servers

from .world import counts, leaked, realm

PAIRS = [("A", "B"), ("A", "first"), ("first", "A"), ("B", "A")]


def _world() -> dict:
    return {
        "A": realm("alpha", tenant=True),
        "B": realm("bravo", tenant=True),
        "first": realm("fp", tenant=False),
    }


def rest_calls(me, them) -> list[tuple[str, str, dict | None, int]]:
    """(method, path, body, expected status) for a caller of realm `me` aiming at `them`."""
    user, other = them.users
    direct, group = them.direct.public_id, them.group.public_id
    dm, gm = them.direct_message.public_id, them.group_message.public_id
    own_group, own_direct = me.group.public_id, me.direct.public_id
    calls = [
        ("get", f"/api/users/{user.public_id}", None, 404),
        ("post", "/api/conversations/direct/", {"user_id": user.public_id}, 404),
        ("get", f"/api/conversations/{direct}/messages/", None, 404),
        ("get", f"/api/conversations/{group}/messages/", None, 404),
        ("post", f"/api/conversations/{direct}/messages/", {"content": "hi"}, 404),
        ("post", f"/api/conversations/{group}/messages/", {"content": "hi"}, 404),
        ("post", f"/api/conversations/{direct}/read/", {"seq": 1}, 404),
        ("post", f"/api/conversations/{direct}/delivered/", {"seq": 1}, 404),
        ("get", f"/api/conversations/{direct}/messages/{dm}/seen-by/", None, 404),
        ("patch", f"/api/conversations/{direct}/messages/{dm}/", {"content": "x"}, 404),
        ("delete", f"/api/conversations/{direct}/messages/{dm}/", None, 404),
        ("get", f"/api/conversations/{group}/messages/{gm}/edits/", None, 404),
        ("post", f"/api/conversations/{group}/messages/{gm}/reactions/", {"emoji": "👍"}, 404),
        ("delete", f"/api/conversations/{group}/messages/{gm}/reactions/", {"emoji": "👍"}, 404),
        # A message of another realm named through one's own conversation.
        ("get", f"/api/conversations/{own_direct}/messages/{dm}/seen-by/", None, 404),
        ("post", f"/api/conversations/{own_direct}/messages/", {"content": "x", "reply_to": dm}, 404),
        (
            "post",
            f"/api/conversations/{own_direct}/messages/",
            {"kind": "file", "attachment_id": them.upload.public_id},
            404,
        ),
        ("delete", f"/api/uploads/{them.upload.public_id}/", None, 404),
        ("get", f"/api/groups/{group}/", None, 404),
        ("patch", f"/api/groups/{group}/", {"name": "mine now"}, 404),
        ("delete", f"/api/groups/{group}/", None, 404),
        ("get", f"/api/groups/{group}/members/", None, 404),
        ("post", f"/api/groups/{group}/members/", {"user_id": me.users[1].public_id}, 404),
        ("delete", f"/api/groups/{group}/members/{other.public_id}/", None, 404),
        ("post", f"/api/groups/{group}/admins/", {"user_id": other.public_id}, 404),
        ("post", f"/api/groups/{group}/admins/handover/", {"user_id": other.public_id}, 404),
        ("delete", f"/api/groups/{group}/admins/{user.public_id}/", None, 404),
        ("post", f"/api/groups/{group}/leave/", {}, 404),
        # Another realm's users named in one's own group, or in a new one.
        ("post", f"/api/groups/{own_group}/members/", {"user_id": user.public_id}, 404),
        ("delete", f"/api/groups/{own_group}/members/{user.public_id}/", None, 404),
        ("post", f"/api/groups/{own_group}/admins/", {"user_id": user.public_id}, 404),
        ("post", "/api/groups/", {"name": "mixed", "member_ids": [user.public_id]}, 404),
        # Reads that filter: answered, without anything of the other realm.
        ("get", f"/api/users/search?q={user.display_name}", None, 200),
        ("get", f"/api/presence/?user_ids={user.public_id},{other.public_id}", None, 200),
        ("get", "/api/conversations/", None, 200),
        ("post", "/api/sync/", {"positions": {direct: 0, group: 0}}, 200),
        ("get", "/api/groups/", None, 200),
    ]
    return calls


@pytest.mark.django_db
@pytest.mark.parametrize(("me", "them"), PAIRS)
def test_rest_across_realms_is_not_found_and_leaks_nothing(me, them):
    world = _world()
    caller, target = world[me], world[them]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {caller.tokens[0]}")
    assert client.get("/api/users/me").status_code == 200  # the caller is who they say
    before = counts()
    for method, path, body, status in rest_calls(caller, target):
        response = (
            getattr(client, method)(path, body, format="json")
            if body is not None
            else getattr(client, method)(path)
        )
        assert response.status_code == status, (method, path, response.status_code, response.content[:300])
        text = response.content.decode()
        if status == 404:
            assert json.loads(text)["code"] == "not_found", (path, text)
        assert leaked(text, target, sent=path + json.dumps(body, ensure_ascii=False)) == [], (
            method,
            path,
            text[:300],
        )
    assert counts() == before


# --- sockets ------------------------------------------------------------------------------------


def socket_calls(me, them) -> list[tuple[str, dict, bool]]:
    """(event, payload, refused?) for every ExpressChat event that names something."""
    user, other = them.users
    direct, group = them.direct.public_id, them.group.public_id
    dm, gm = them.direct_message.public_id, them.group_message.public_id
    own_group, own_direct = me.group.public_id, me.direct.public_id
    return [
        ("check-chat", {"Receiver": user.public_id}, True),
        ("create-personal-chat", {"Receiver": user.public_id}, True),
        ("send-personal-message", {"ChatId": direct, "Content": "hi"}, True),
        ("read-personal-message", {"ChatId": direct}, True),
        ("fetch-personal-chat", {"ChatId": direct}, True),
        ("send-group-message", {"GroupId": group, "Content": "hi"}, True),
        ("read-group-message", {"GroupId": group}, True),
        ("fetch-group-chat", {"GroupId": group}, True),
        ("create-group-chat", {"Name": "mixed", "Participants": [user.public_id]}, True),
        ("add-member", {"GroupId": own_group, "Member": user.public_id}, True),
        ("add-member", {"GroupId": group, "Member": me.users[1].public_id}, True),
        ("change-admin", {"GroupId": group, "Member": other.public_id}, True),
        ("change-admin", {"GroupId": own_group, "Member": user.public_id}, True),
        ("kickout", {"GroupId": own_group, "Member": user.public_id}, True),
        ("kickout", {"GroupId": group, "Member": other.public_id}, True),
        ("leave-grp", {"GroupId": group}, True),
        ("delete-grp", {"GroupId": group}, True),
        ("mark-read", {"ChatId": direct}, True),
        ("message-delivered", {"ChatId": direct, "Seq": 1}, True),
        ("fetch-seen-by", {"ChatId": direct, "MessageId": dm}, True),
        ("fetch-seen-by", {"ChatId": own_direct, "MessageId": dm}, True),
        ("typing", {"ChatId": direct}, True),
        ("stop-typing", {"ChatId": group}, True),
        ("edit-message", {"ChatId": direct, "Id": dm, "Content": "x"}, True),
        ("delete-message", {"ChatId": group, "Id": gm}, True),
        ("react", {"ChatId": group, "Id": gm, "Emoji": "👍"}, True),
        ("unreact", {"ChatId": group, "Id": gm, "Emoji": "👍"}, True),
        ("send-personal-message", {"ChatId": own_direct, "Content": "x", "ReplyTo": dm}, True),
        (
            "send-personal-message",
            {"ChatId": own_direct, "Kind": "file", "AttachmentId": them.upload.public_id},
            True,
        ),
        ("search-user", {"Name": user.display_name, "Type": "Search"}, False),
        ("fetch-presence", {"UserIds": [user.public_id, other.public_id]}, False),
        ("sync", {"Positions": {direct: 0, group: 0}}, False),
    ]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    servers = _start_servers(1, tmp_path_factory.mktemp("isolation"), REDIS_URL)
    yield servers[0]
    servers[0].stop()


@pytest.mark.django_db(transaction=True)
async def test_every_expresschat_event_across_realms_is_not_found_and_leaks_nothing(server):
    import socketio

    world = await asyncio.to_thread(_world)
    for me, them in PAIRS:
        caller, target = world[me], world[them]
        sio = socketio.AsyncClient(reconnection=False)
        received: list[str] = []

        @sio.on("*", namespace=caller.namespace)
        async def any_event(event, *args, received=received):
            received.append(json.dumps([event, *args], default=str))

        await sio.connect(
            server.url,
            namespaces=[caller.namespace],
            auth={"token": caller.tokens[0]},
            transports=["websocket"],
            wait_timeout=5,
        )
        before = await asyncio.to_thread(counts)
        for event, payload, refused in socket_calls(caller, target):
            ack = await sio.call(event, payload, namespace=caller.namespace, timeout=5)
            text = json.dumps(ack, ensure_ascii=False)
            if refused:
                assert ack["ok"] is False and ack["error"]["code"] == "not_found", (
                    me,
                    them,
                    event,
                    payload,
                    ack,
                )
            else:
                assert ack["ok"] is True, (me, them, event, ack)
            sent = json.dumps(payload, ensure_ascii=False)
            assert leaked(text, target, sent) == [], (me, them, event, text[:300])
        await asyncio.sleep(0.3)
        everything_sent = json.dumps([p for _e, p, _r in socket_calls(caller, target)], ensure_ascii=False)
        assert [e for e in received if leaked(e, target, everything_sent)] == [], (me, them)
        assert await asyncio.to_thread(counts) == before, (me, them)
        await sio.disconnect()
