"""ExpressChat group events on "/", with real clients against live server processes."""

import pytest

from messaging.models import Conversation, Membership, Message

from .clients import SioClient

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(url: str, chat_user, **kwargs) -> SioClient:
    client = await SioClient().connect(url, token=chat_user.access, **kwargs)
    await client.next("group-chat-list")
    return client


async def make_group(owner_client: SioClient, members, name="Team") -> str:
    ack = await owner_client.call(
        "create-group-chat", {"Name": name, "Description": "d", "Participants": [m.id for m in members]}
    )
    assert ack["ok"], ack
    created = await owner_client.next("create-group-chat-creator")
    assert created == {"GroupId": ack["data"]["GroupId"], "Name": name}
    return created["GroupId"]


@pytest.fixture
def trio(make_user):
    return make_user("Alice"), make_user("Bob"), make_user("Carol")


async def test_create_send_read_and_fetch_a_group(live_server_proc, trio):
    alice, bob, carol = trio
    a, b, c = [await connect(live_server_proc.url, u) for u in trio]
    group_id = await make_group(a, [bob, carol])
    assert await b.next("create-group-chat-receiver") == {"GroupId": group_id, "Name": "Team"}
    assert await c.next("create-group-chat-receiver") == {"GroupId": group_id, "Name": "Team"}
    await a.none("create-group-chat-receiver", wait=0.1)

    sent = await b.call("send-group-message", {"GroupId": group_id, "Content": "hello all"})
    assert sent["ok"]
    for client in (a, c):
        got = await client.next("receive-group-message")
        assert {k: got[k] for k in ("ChatId", "Sender", "Content")} == {
            "ChatId": group_id,
            "Sender": "Bob",
            "Content": "hello all",
        }
    await b.none("receive-group-message", wait=0.1)

    await c.call("read-group-message", {"GroupId": group_id})
    for client in (a, b):
        ack = await client.next("read-grp-msg-ack")
        assert ack["Reader"] == carol.id and ack["ChatId"] == group_id

    await a.call("fetch-group-chat", {"GroupId": group_id})
    page = await a.next("group-chat")
    assert page["Admin"] == alice.id and page["Name"] == "Team" and page["Description"] == "d"
    assert page["Participants"] == {alice.id: "Alice", bob.id: "Bob", carol.id: "Carol"}
    newest = page["Messages"][0]
    assert newest["Content"] == "hello all" and newest["Sender"] == "Bob" and len(newest["Id"]) == 24
    assert newest["ReadStatus"] == {alice.id: "Unread", bob.id: "Read", carol.id: "Read"}
    # An original client would show "Alice created the group" as if Alice had typed it: it is
    # left out for clients that did not opt in to the extensions ...
    assert [m["Kind"] for m in page["Messages"]] == ["text"]
    # ... and there for those that did (the product's web client).
    opted = await connect(live_server_proc.url, alice, query="extensions=1")
    await opted.call("fetch-group-chat", {"GroupId": group_id})
    page = await opted.next("group-chat")
    assert [m["Kind"] for m in page["Messages"]] == ["text", "system"]
    assert page["Messages"][-1]["SenderId"] == alice.id and "created" in page["Messages"][-1]["Content"]
    await opted.close()

    b2 = await SioClient().connect(live_server_proc.url, token=bob.access)
    listing = await b2.next("group-chat-list")
    assert listing["GroupChatList"][0]["_id"] == group_id and listing["GroupChatList"][0]["Name"] == "Team"
    for client in (a, b, c, b2):
        await client.close()


async def test_only_admins_add_and_adding_twice_fails(live_server_proc, trio, make_user):
    alice, bob, carol = trio
    dave = make_user("Dave")
    a, b, d = (
        await connect(live_server_proc.url, alice, query="extensions=1"),
        await connect(live_server_proc.url, bob),  # an original client: no system messages
        await connect(live_server_proc.url, dave),
    )
    group_id = await make_group(a, [bob])
    refused = await b.call("add-member", {"GroupId": group_id, "Member": carol.id})
    assert refused["ok"] is False and refused["error"]["code"] == "permission_denied"
    assert await b.next("add-member-fail") == {"Message": "You Should be admin to add a member"}

    added = await a.call("add-member", {"GroupId": group_id, "Member": dave.id})
    assert added["ok"]
    assert await d.next("new-grp-added") == {"ChatId": group_id, "Name": "Team"}
    for client in (a, b):  # every participant, the caller included, except the new member
        assert await client.next("add-member-success") == {"ChatId": group_id, "Member": dave.id}
    # The fact is also a system message in history, pushed live (an extension) so that clients
    # following Rev see no hole: the group's creation was Rev 1 (its system message was posted
    # before any member's routing to the group existed: each gets it once routed), this is
    # Rev 2. Only to clients that opted in to the extensions.
    created = await a.next("system-message")
    assert (created["ChatId"], created["Kind"], created["Seq"], created["Rev"]) == (group_id, "system", 1, 1)
    system = await a.next("system-message")
    assert (system["ChatId"], system["Kind"], system["Seq"], system["Rev"]) == (group_id, "system", 2, 2)
    assert system["SenderId"] == alice.id and "Dave" in system["Content"]
    await b.none("system-message", wait=0.2)
    await d.none("add-member-success", wait=0.1)
    # The new member's live connection now receives the group's messages.
    await b.call("send-group-message", {"GroupId": group_id, "Content": "welcome"})
    assert (await d.next("receive-group-message"))["Content"] == "welcome"

    again = await a.call("add-member", {"GroupId": group_id, "Member": dave.id})
    assert again["ok"] is False
    assert await a.next("add-member-fail") == {"Message": "Already in Group"}
    for client in (a, b, d):
        await client.close()


async def test_kicked_member_stops_receiving_at_once_and_reads_history_only_until_then(
    live_server_proc, trio
):
    alice, bob, carol = trio
    a, b, c = [await connect(live_server_proc.url, u) for u in trio]
    group_id = await make_group(a, [bob, carol])
    await a.call("send-group-message", {"GroupId": group_id, "Content": "before"})
    await c.next("receive-group-message")
    await b.next("receive-group-message")

    assert (await b.call("kickout", {"GroupId": group_id, "Member": carol.id}))["error"][
        "code"
    ] == "permission_denied"
    kicked = await a.call("kickout", {"GroupId": group_id, "Member": carol.id})
    assert kicked["ok"]
    assert await a.next("kickout-successful") == {"GroupId": group_id}
    assert await c.next("kicked-out") == {"GroupId": group_id, "GroupName": "Team"}
    told = await b.next("someone-kicked-out")
    assert told["GroupId"] == group_id and told["GroupName"] == "Team"
    await a.none("someone-kicked-out", wait=0.1)

    await a.call("send-group-message", {"GroupId": group_id, "Content": "after"})
    assert (await b.next("receive-group-message"))["Content"] == "after"
    await c.none("receive-group-message", wait=0.3)

    posted = await c.call("send-group-message", {"GroupId": group_id, "Content": "still here?"})
    assert posted["ok"] is False and posted["error"]["code"] == "not_found"
    fetched = await c.call("fetch-group-chat", {"GroupId": group_id})
    assert fetched["ok"] is False and fetched["error"]["code"] == "not_found"
    membership = Membership.objects.get(user=carol.user, conversation__public_id=group_id)
    assert membership.left_at is not None
    visible = Message.objects.filter(conversation__public_id=group_id, seq__lte=membership.left_seq)
    assert "before" in {m.content for m in visible} and "after" not in {m.content for m in visible}
    for client in (a, b, c):
        await client.close()


async def test_owner_cannot_be_kicked_and_last_admin_cannot_leave(live_server_proc, trio):
    alice, bob, carol = trio
    a, b = await connect(live_server_proc.url, alice), await connect(live_server_proc.url, bob)
    group_id = await make_group(a, [bob, carol])
    left = await a.call("leave-grp", {"GroupId": group_id})
    assert left["ok"] is False and left["error"]["code"] == "conflict"
    assert (await a.next("group-left-fail"))["Message"] == "Make New Admin before Leaving"

    handed = await a.call("change-admin", {"GroupId": group_id, "Member": bob.id})
    assert handed["ok"]
    assert await a.next("change-admin-success-creator") == {"GroupId": group_id}
    assert (await b.next("change-admin-success-receiver"))["GroupId"] == group_id
    refused = await b.call("kickout", {"GroupId": group_id, "Member": bob.id})
    assert refused["ok"] is False
    await b.call("fetch-group-chat", {"GroupId": group_id})
    assert (await b.next("group-chat"))["Admin"] == bob.id

    left = await a.call("leave-grp", {"GroupId": group_id})
    assert left["ok"]
    assert await a.next("group-left-success") == {"Message": "Group Left Successfully", "GroupId": group_id}
    assert await b.next("user-left-grp") == {"GroupId": group_id, "User": alice.id}
    kick_owner = await a.call("kickout", {"GroupId": group_id, "Member": bob.id})
    assert kick_owner["ok"] is False and kick_owner["error"]["code"] == "not_found"  # no longer a member
    for client in (a, b):
        await client.close()


async def test_delete_group_by_admin_only(live_server_proc, trio):
    alice, bob, carol = trio
    a, b = await connect(live_server_proc.url, alice), await connect(live_server_proc.url, bob)
    group_id = await make_group(a, [bob, carol])
    refused = await b.call("delete-grp", {"GroupId": group_id})
    assert refused["ok"] is False and refused["error"]["code"] == "permission_denied"
    assert Conversation.objects.filter(public_id=group_id).exists()
    deleted = await a.call("delete-grp", {"GroupId": group_id})
    assert deleted["ok"]
    assert await a.next("delete-group-chat-creator") == {"GroupId": group_id}
    assert await b.next("delete-grp-success-receiver") == {"GroupId": group_id}
    assert not Conversation.objects.filter(public_id=group_id).exists()
    for client in (a, b):
        await client.close()


async def test_outsider_cannot_touch_or_learn_about_a_group(live_server_proc, trio, make_user):
    alice, bob, _carol = trio
    eve = make_user("Eve")
    a, e = await connect(live_server_proc.url, alice), await connect(live_server_proc.url, eve)
    group_id = await make_group(a, [bob])
    for event, data in [
        ("send-group-message", {"GroupId": group_id, "Content": "x"}),
        ("read-group-message", {"GroupId": group_id}),
        ("fetch-group-chat", {"GroupId": group_id}),
        ("kickout", {"GroupId": group_id, "Member": bob.id}),
        ("change-admin", {"GroupId": group_id, "Member": eve.id}),
        ("delete-grp", {"GroupId": group_id}),
        ("leave-grp", {"GroupId": group_id}),
    ]:
        ack = await e.call(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", (event, ack)
    unknown = await e.call("fetch-group-chat", {"GroupId": "0" * 24})
    assert unknown["error"] == ack["error"] | {
        "extra": unknown["error"]["extra"]
    }  # same answer as a real group
    await e.call("add-member", {"GroupId": group_id, "Member": eve.id})
    assert (await e.next("add-member-fail"))["Message"] == "No such conversation."
    assert not Membership.objects.filter(user=eve.user, conversation__public_id=group_id).exists()
    await e.none("receive-group-message", wait=0.1)
    for client in (a, e):
        await client.close()


@pytest.mark.parametrize(
    "data",
    [
        {"Name": "", "Participants": []},
        {"Name": {"$ne": 1}, "Participants": []},
        {"Name": "x" * 101, "Participants": []},
        {"Name": "ok", "Participants": "abc"},
        {"Name": "ok", "Participants": ["0" * 24]},
        {"Name": "ok", "Description": 5, "Participants": []},
    ],
)
async def test_bad_group_creation_is_refused_and_stores_nothing(live_server_proc, make_user, data):
    alice = make_user("Alice")
    a = await connect(live_server_proc.url, alice)
    ack = await a.call("create-group-chat", data)
    assert ack["ok"] is False and ack["error"]["code"] in {"invalid", "not_found"}
    assert not Conversation.objects.filter(kind="group").exists()
    await a.close()


async def test_member_removed_on_another_process_stops_receiving(redis_server_pair, trio):
    one, two = redis_server_pair
    alice, bob, carol = trio
    a = await connect(one.url, alice)
    c = await connect(two.url, carol)
    b = await connect(two.url, bob)
    group_id = await make_group(a, [bob, carol])
    await c.next("create-group-chat-receiver")
    await a.call("send-group-message", {"GroupId": group_id, "Content": "hi"})
    assert (await c.next("receive-group-message"))["Content"] == "hi"
    assert (await b.next("receive-group-message"))["Content"] == "hi"
    await a.call("kickout", {"GroupId": group_id, "Member": carol.id})
    assert (await c.next("kicked-out"))["GroupId"] == group_id
    await a.call("send-group-message", {"GroupId": group_id, "Content": "gone"})
    assert (await b.next("receive-group-message"))["Content"] == "gone"
    await c.none("receive-group-message", wait=0.3)
    for client in (a, b, c):
        await client.close()
