"""Edits, deletes, replies and reactions on ExpressChat "/", with real python-socketio clients
against a live server process: what the actor's ack says and what each member (and nobody
else) receives live, then what history serves."""

import pytest

from .clients import connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)


async def test_direct_chat_edit_reply_react_and_delete_live(live_server_proc, make_user):
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    a, b, c = [await connect_greeted(live_server_proc, u) for u in (alice, bob, carol)]
    try:
        chat_id = ok(await a.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
        sent = ok(await a.call("send-personal-message", {"ChatId": chat_id, "Content": "helo"}))
        await b.next("receive-personal-message")

        # Edit: the other member is told, the editor's ack carries the time.
        edited = ok(await a.call("edit-message", {"ChatId": chat_id, "Id": sent["Id"], "Content": "hello"}))
        assert (edited["ChatId"], edited["Id"], edited["Seq"]) == (chat_id, sent["Id"], 1)
        assert await b.next("message-edited") == {
            "ChatId": chat_id,
            "Id": sent["Id"],
            "Seq": 1,
            "Rev": 2,
            "Content": "hello",
            "EditedAt": edited["EditedAt"],
        }
        assert edited["Rev"] == 2
        await a.none("message-edited", wait=0.2)

        # Only the sender edits.
        refused = await b.call("edit-message", {"ChatId": chat_id, "Id": sent["Id"], "Content": "mine"})
        assert refused["ok"] is False and refused["error"]["code"] == "permission_denied"

        # A reply carries the quote to the other member.
        reply = ok(
            await b.call(
                "send-personal-message", {"ChatId": chat_id, "Content": "hi!", "ReplyTo": sent["Id"]}
            )
        )
        delivered = await a.next("receive-personal-message")
        assert (delivered["Id"], delivered["Content"]) == (reply["Id"], "hi!")
        assert delivered["ReplyTo"] == {
            "Id": sent["Id"],
            "Seq": 1,
            "Sender": "Alice",
            "SenderId": alice.id,
            "Excerpt": "hello",
            "Deleted": False,
            "Kind": "text",
        }

        # Reactions reach both members (the reacting one too), never an outsider.
        reacted = ok(await b.call("react", {"ChatId": chat_id, "Id": sent["Id"], "Emoji": "👍"}))
        assert (reacted["Count"], reacted["Changed"]) == (1, True)
        expected = {
            "ChatId": chat_id,
            "Id": sent["Id"],
            "Seq": 1,
            "Rev": 4,
            "Emoji": "👍",
            "UserId": bob.id,
            "Count": 1,
            "Added": True,
        }
        assert await a.next("reaction") == expected
        assert await b.next("reaction") == expected
        again = ok(await b.call("react", {"ChatId": chat_id, "Id": sent["Id"], "Emoji": "👍"}))
        assert (again["Changed"], again["Seq"], again["MyReactions"]) == (False, 1, ["👍"])
        await a.none("reaction", wait=0.2)
        await c.none("reaction", wait=0)

        # An outsider cannot react, and learns nothing from trying.
        outsider = await c.call("react", {"ChatId": chat_id, "Id": sent["Id"], "Emoji": "👍"})
        assert outsider["ok"] is False and outsider["error"]["code"] == "not_found"

        # History serves all of it, with the chat's latest Rev (a resync position).
        await a.call("fetch-personal-chat", {"ChatId": chat_id})
        page = await a.next("personal-chat")
        newest, oldest = page["Messages"]
        assert page["Rev"] == reacted["Rev"] == 4
        assert (newest["_id"], newest["ReplyTo"]["Id"]) == (reply["Id"], sent["Id"])
        assert (oldest["Content"], oldest["EditedAt"], oldest["Reactions"]) == (
            "hello",
            edited["EditedAt"],
            {"👍": 1},
        )
        assert oldest["MyReactions"] == []

        # Delete: every member's connection is told, the sender's included.
        gone = ok(await a.call("delete-message", {"ChatId": chat_id, "Id": sent["Id"]}))
        assert gone == {"ChatId": chat_id, "Id": sent["Id"], "Seq": 1, "Rev": 5}
        for client in (a, b):
            assert await client.next("message-deleted") == {
                "ChatId": chat_id,
                "Id": sent["Id"],
                "Seq": 1,
                "Rev": 5,
                "Hidden": False,
            }
        await c.none("message-deleted", wait=0.2)
        await b.call("fetch-personal-chat", {"ChatId": chat_id})
        newest, oldest = (await b.next("personal-chat"))["Messages"]
        assert (oldest["Content"], oldest["Deleted"], oldest["Reactions"]) == ("", True, {})
        assert (newest["ReplyTo"]["Excerpt"], newest["ReplyTo"]["Deleted"]) == ("", True)
    finally:
        for client in (a, b, c):
            await client.close()


async def test_group_admin_deletes_a_members_message_and_members_see_replies_live(
    live_server_proc, make_user
):
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    a, b, c = [await connect_greeted(live_server_proc, u) for u in (alice, bob, carol)]
    try:
        created = ok(await a.call("create-group-chat", {"Name": "Team", "Participants": [bob.id, carol.id]}))
        group_id = created["GroupId"]
        for client in (b, c):
            await client.next("create-group-chat-receiver")
        spam = ok(await b.call("send-group-message", {"GroupId": group_id, "Content": "spam"}))
        for client in (a, c):
            await client.next("receive-group-message")

        answer = ok(
            await c.call("send-group-message", {"GroupId": group_id, "Content": "no", "ReplyTo": spam["Id"]})
        )
        for client in (a, b):
            got = await client.next("receive-group-message")
            assert got["Id"] == answer["Id"]
            assert (got["ReplyTo"]["Id"], got["ReplyTo"]["Sender"]) == (spam["Id"], "Bob")

        # A plain member cannot delete someone else's message; the owner can.
        refused = await c.call("delete-message", {"ChatId": group_id, "Id": spam["Id"]})
        assert refused["ok"] is False and refused["error"]["code"] == "permission_denied"
        ok(await a.call("delete-message", {"ChatId": group_id, "Id": spam["Id"]}))
        for client in (a, b, c):
            removed = await client.next("message-deleted")
            assert removed == {"ChatId": group_id, "Id": spam["Id"], "Seq": 2, "Rev": 4, "Hidden": False}

        ok(await b.call("react", {"ChatId": group_id, "Id": answer["Id"], "Emoji": "🎉"}))
        for client in (a, b, c):
            assert (await client.next("reaction"))["Count"] == 1
        ok(await b.call("unreact", {"ChatId": group_id, "Id": answer["Id"], "Emoji": "🎉"}))
        for client in (a, b, c):
            got = await client.next("reaction")
            assert (got["Count"], got["Added"]) == (0, False)
    finally:
        for client in (a, b, c):
            await client.close()


async def test_a_reply_to_another_conversations_message_is_refused(live_server_proc, make_user):
    alice, bob, carol = make_user("Alice"), make_user("Bob"), make_user("Carol")
    a = await connect_greeted(live_server_proc, alice)
    try:
        with_bob = ok(await a.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
        with_carol = ok(await a.call("create-personal-chat", {"Receiver": carol.id}))["ChatId"]
        foreign = ok(await a.call("send-personal-message", {"ChatId": with_carol, "Content": "x"}))
        refused = await a.call(
            "send-personal-message", {"ChatId": with_bob, "Content": "y", "ReplyTo": foreign["Id"]}
        )
        assert refused["ok"] is False
        assert (refused["error"]["code"], refused["error"]["extra"]) == ("not_found", {"field": "reply_to"})
        note = ok(await a.call("send-self-message", {"Content": "note"}))
        quoted = ok(await a.call("send-self-message", {"Content": "re", "ReplyTo": note["Id"]}))
        await a.call("fetch-self-chat", {})
        newest = (await a.next("self-chat"))["Messages"][0]
        assert (newest["_id"], newest["ReplyTo"]["Id"]) == (quoted["Id"], note["Id"])
    finally:
        await a.close()


async def test_own_messages_and_edits_reach_the_senders_other_connections_at_once(
    live_server_proc, make_user
):
    alice, bob = make_user("Alice"), make_user("Bob")
    laptop, phone, b = [await connect_greeted(live_server_proc, u) for u in (alice, alice, bob)]
    try:
        chat_id = ok(await laptop.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
        sent = ok(
            await laptop.call("send-personal-message", {"ChatId": chat_id, "Content": "from the laptop"})
        )
        delivered = await b.next("receive-personal-message")
        # The phone gets the same message as `message-sent` (an extension), the laptop nothing
        # (it has its ack), Bob nothing more.
        echoed = await phone.next("message-sent")
        assert echoed == delivered
        assert (echoed["Id"], echoed["Rev"], echoed["SenderId"]) == (sent["Id"], sent["Rev"], alice.id)
        await laptop.none("message-sent", wait=0.2)
        await b.none("message-sent", wait=0)

        edited = ok(
            await laptop.call("edit-message", {"ChatId": chat_id, "Id": sent["Id"], "Content": "edited"})
        )
        assert (await phone.next("message-edited"))["Rev"] == edited["Rev"]
        assert (await b.next("message-edited"))["Content"] == "edited"
        await laptop.none("message-edited", wait=0.2)

        # Notes to self too: the other device learns of the note.
        note = ok(await phone.call("send-self-message", {"Content": "buy milk"}))
        assert (await laptop.next("message-sent"))["Id"] == note["Id"]
        await phone.none("message-sent", wait=0.2)
    finally:
        for client in (laptop, phone, b):
            await client.close()


async def test_a_message_sent_over_rest_reaches_every_socket_of_the_sender(live_server_proc, make_user):
    import aiohttp

    alice, bob = make_user("Alice"), make_user("Bob")
    laptop, phone = [await connect_greeted(live_server_proc, alice) for _ in range(2)]
    try:
        chat_id = ok(await laptop.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {alice.access}"}) as http:
            url = f"{live_server_proc.url}/api/conversations/{chat_id}/messages/"
            async with http.post(url, json={"content": "from a script"}) as response:
                assert response.status == 201
                stored = await response.json()
        for device in (laptop, phone):
            assert (await device.next("message-sent"))["Id"] == stored["id"]
    finally:
        for client in (laptop, phone):
            await client.close()
