"""A member just added to a group gets its live messages from the membership on, each once and
in seq order, with real Socket.IO clients on two server processes sharing Redis: the owner on
one, the members on the other (whose process subscribes to the group only when the membership
event reaches it)."""

import pytest

from .clients import SioClient

pytestmark = pytest.mark.django_db(transaction=True)


async def greeted(url: str, chat_user) -> SioClient:
    client = await SioClient().connect(url, token=chat_user.access, query="extensions=1")
    await client.next("group-chat-list")
    return client


def group_events(client: SioClient, group_id: str) -> list[tuple[str, object]]:
    """(event name, Seq or name) of what the client got about the group, in arrival order."""
    return [
        (name, data.get("Seq") if "Seq" in data else data.get("Name"))
        for name, data in client.log
        if isinstance(data, dict) and group_id in (data.get("ChatId"), data.get("GroupId"))
    ]


async def test_members_added_on_another_process_get_every_message_from_their_membership_on(
    redis_server_pair, make_user
):
    one, two = redis_server_pair
    alice, dave, carol = make_user("Alice"), make_user("Dave"), make_user("Carol")
    a = await greeted(one.url, alice)
    d, c = await greeted(two.url, dave), await greeted(two.url, carol)

    # Created with Dave: its first system message (Seq 1) is published before the creation
    # event that routes Dave's process to the group.
    made = await a.call("create-group-chat", {"Name": "Team", "Description": "", "Participants": [dave.id]})
    group_id = made["data"]["GroupId"]
    # Carol added and, at once, messages sent, without waiting for her process to route her.
    assert (await a.call("add-member", {"GroupId": group_id, "Member": carol.id}))["ok"]
    for text in ("m1", "m2", "m3"):
        await a.emit("send-group-message", {"GroupId": group_id, "Content": text})

    for client in (d, c):
        got = [await client.next("receive-group-message") for _ in range(3)]
        assert [m["Content"] for m in got] == ["m1", "m2", "m3"]
        await client.none("receive-group-message", wait=0.3)  # each once
    assert group_events(d, group_id) == [
        ("create-group-chat-receiver", "Team"),
        ("system-message", 1),  # "Alice created the group"
        ("add-member-success", None),
        ("system-message", 2),  # "Alice added Carol"
        ("receive-group-message", 3),
        ("receive-group-message", 4),
        ("receive-group-message", 5),
    ]
    assert group_events(c, group_id) == [
        ("new-grp-added", "Team"),
        ("system-message", 2),  # from the membership on: not the group's creation
        ("receive-group-message", 3),
        ("receive-group-message", 4),
        ("receive-group-message", 5),
    ]
    for client in (a, d, c):
        await client.close()
