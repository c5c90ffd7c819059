"""The Channels consumer at /ws/ speaks the same events as JSON frames."""

import pytest

from messaging.models import Message

from .clients import SioClient, WsClient

pytestmark = pytest.mark.django_db(transaction=True)


def bearer(chat_user) -> dict:
    return {"Authorization": f"Bearer {chat_user.access}"}


async def test_ws_greets_like_socketio(live_server_proc, make_user):
    alice = make_user("Alice")
    ws = await WsClient().connect(live_server_proc.url, headers=bearer(alice))
    assert await ws.next("user-id") == {"userId": alice.id, "userName": "Alice"}
    assert await ws.next("personal-chat-list") == {"PersonalChatList": []}
    assert await ws.next("group-chat-list") == {"GroupChatList": []}
    await ws.close()


async def test_ws_without_credentials_gets_auth_failure_and_close(live_server_proc):
    ws = await WsClient().connect(live_server_proc.url)
    assert (await ws.next("auth-failure"))["reason"] == "Authentication failed"
    await ws.closed.wait()


async def test_ws_and_socketio_clients_chat_in_one_conversation(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    ws = await WsClient().connect(live_server_proc.url, headers=bearer(alice))
    await ws.next("group-chat-list")
    sio = await SioClient().connect(live_server_proc.url, token=bob.access)
    await sio.next("group-chat-list")

    created = await ws.call("create-personal-chat", {"Receiver": bob.id})
    chat_id = created["data"]["ChatId"]
    assert await ws.next("create-personal-chat-creator") == {"ChatId": chat_id, "Partner": "Bob"}
    assert await sio.next("create-personal-chat-partner") == {"ChatId": chat_id, "Partner": "Alice"}

    sent = await ws.call("send-personal-message", {"ChatId": chat_id, "Content": "from ws"})
    assert sent["ok"] is True and sent["data"]["Seq"] == 1
    assert (await sio.next("receive-personal-message"))["Content"] == "from ws"

    await sio.call("send-personal-message", {"ChatId": chat_id, "Content": "from sio"})
    received = await ws.next("receive-personal-message")
    assert received["Content"] == "from sio" and received["Sender"] == "Bob" and received["Seq"] == 2

    await sio.call("read-personal-message", {"ChatId": chat_id})
    assert (await ws.next("read-personal-msg-ack"))["ChatId"] == chat_id
    await ws.close()
    await sio.close()


@pytest.mark.parametrize(
    "frame",
    ["not json", "[]", '{"data": {}}', '{"event": 5}', '{"event": "x", "ack": {"a": 1}}', "x" * 70000],
)
async def test_ws_malformed_frames_get_an_error_and_keep_the_socket(live_server_proc, make_user, frame):
    alice = make_user("Alice")
    ws = await WsClient().connect(live_server_proc.url, headers=bearer(alice))
    await ws.next("group-chat-list")
    await ws.send_raw(frame)
    error = await ws.next("error")
    assert error["code"] in {"invalid", "payload_too_large"}
    assert (await ws.call("fetch-user-details"))["ok"] is True


async def test_ws_event_errors_come_back_in_the_ack(live_server_proc, make_user):
    alice = make_user("Alice")
    ws = await WsClient().connect(live_server_proc.url, headers=bearer(alice))
    await ws.next("group-chat-list")
    ack = await ws.call("send-self-message", {"Content": ""})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    assert Message.objects.count() == 0
    ok = await ws.call("send-self-message", {"Content": "note"})
    assert ok["ok"] is True
    await ws.close()


async def test_ws_rejects_foreign_browser_origin(live_server_proc, make_user):
    alice = make_user("Alice")
    headers = bearer(alice) | {"Origin": "https://evil.example.com"}
    with pytest.raises(Exception):  # noqa: B017 - the handshake itself is refused
        await WsClient().connect(live_server_proc.url, headers=headers)


async def test_ws_origin_must_match_the_site_s_scheme_too(live_server_proc, make_user):
    alice = make_user("Alice")
    host = live_server_proc.url.removeprefix("http://")
    same_site = await WsClient().connect(
        live_server_proc.url, headers=bearer(alice) | {"Origin": f"http://{host}"}
    )
    assert (await same_site.next("user-id"))["userId"] == alice.id
    await same_site.close()
    with pytest.raises(Exception):  # noqa: B017 - an https page of the same host name: another origin
        await WsClient().connect(live_server_proc.url, headers=bearer(alice) | {"Origin": f"https://{host}"})
