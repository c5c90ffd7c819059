"""A moderator deletes a message in the live server's admin, over HTTP with a real login, and a
connected member's socket sees it removed; a non-member's socket hears nothing. Going through the
server's own admin reaches its bus whichever bus it runs (in memory or Redis)."""

import re

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from messaging import services
from tests.realtime.clients import connect_greeted

from .conftest import STAFF_PASSWORD, send, staff_make

pytestmark = pytest.mark.django_db(transaction=True)

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


async def csrf_token(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        assert response.status == 200, url
        match = CSRF.search(await response.text())
    assert match, f"no CSRF token on {url}"
    return match.group(1)


async def admin_login(http: aiohttp.ClientSession, base: str, email: str, password: str) -> None:
    data = {"username": email, "password": password, "next": "/admin/"}
    data["csrfmiddlewaretoken"] = await csrf_token(http, f"{base}/admin/login/")
    async with http.post(f"{base}/admin/login/", data=data, allow_redirects=False) as response:
        assert response.status == 302, "admin login failed"


async def test_member_sees_a_message_deleted_in_the_admin_live(live_server_proc, make_user):
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    staff_make("mod@example.com", "messaging.moderate_message", "messaging.view_message")

    def conversation_with_a_message():
        # In a worker thread: the services publish on commit, and the bus cannot be called
        # synchronously from this test's event-loop thread.
        chat, _partner, _created = services.direct_conversation_get_or_create(
            user=alice.user, other_user_id=bob.id
        )
        return chat, send(alice, chat, "rude words")

    chat, message = await sync_to_async(conversation_with_a_message)()
    member, outsider = (
        await connect_greeted(live_server_proc, bob),
        await connect_greeted(live_server_proc, carol),
    )
    base = live_server_proc.url
    try:
        # unsafe: the jar otherwise refuses cookies from an IP address such as 127.0.0.1.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await admin_login(http, base, "mod@example.com", STAFF_PASSWORD)
            changelist = f"{base}/admin/messaging/message/"
            data = {
                "csrfmiddlewaretoken": await csrf_token(http, changelist),
                "action": "delete_messages",
                "_selected_action": str(message.pk),
                "apply": "yes",
                "reason": "Insults",
            }
            async with http.post(changelist, data=data, allow_redirects=False) as response:
                assert response.status == 302
        removed = await member.next("message-deleted")
        assert removed == {
            "ChatId": chat.public_id,
            "Id": message.public_id,
            "Seq": 1,
            "Rev": 2,
            "Hidden": False,
        }
        await outsider.none("message-deleted", wait=0.3)
        # And history now serves the tombstone.
        await member.call("fetch-personal-chat", {"ChatId": chat.public_id})
        [served] = (await member.next("personal-chat"))["Messages"]
        assert (served["_id"], served["Content"], served["Deleted"]) == (message.public_id, "", True)
    finally:
        await member.close()
        await outsider.close()
