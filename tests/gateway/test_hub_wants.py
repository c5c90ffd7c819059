"""Which bus copies a hub wants (`Hub.wants`, asked before an event is published): the sender's
own copy of a message is wanted by nobody here only when the connection that sent it is the
sender's only one in this hub and the protocol's rendering sends that connection nothing."""

import pytest

from chatproject.bus.groups import conversation_group, user_group
from gateway.protocols.chatserver import PROTOCOL as CHAT_SERVER
from gateway.protocols.expresschat import PROTOCOL as EXPRESS_CHAT
from gateway.protocols.privatechat import PROTOCOL as PRIVATE_CHAT

from .test_hub_hooks import add_connection, make_hub  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def message_created(sender: str, *, origin: str | None = "c1", kind: str = "direct") -> dict:
    event = {
        "type": "message.created",
        "actor": sender,
        "conversation": {"id": "conv1", "kind": kind},
        "message": {
            "id": "m1",
            "seq": 1,
            "rev": 1,
            "kind": "text",
            "content": "hi",
            "sender_id": sender,
            "sender_name": "Alice",
            "client_message_id": None,
            "created_at": "2026-12-06T08:00:00.000Z",
            "reply_to": None,
            "attachment": None,
        },
    }
    if origin is not None:
        event["origin"] = origin
    return event


@pytest.fixture
def alice_hub(make_hub, make_user):  # noqa: F811
    hub = make_hub(EXPRESS_CHAT, [])
    alice = make_user("Alice").user
    add_connection(hub, alice, "c1", greeted=True)
    return hub, alice.public_id


def test_the_senders_own_copy_from_its_only_connection_is_not_wanted(alice_hub):
    hub, alice = alice_hub
    assert not hub.wants(user_group(alice), message_created(alice))
    edited = message_created(alice) | {"type": "message.edited"}
    edited["message"]["edited_at"] = "2026-12-06T08:01:00.000Z"
    assert not hub.wants(user_group(alice), edited)


def test_a_second_connection_of_the_sender_wants_it(alice_hub, make_user):
    hub, alice = alice_hub
    add_connection(hub, hub.connections["c1"].user, "c2", greeted=True)
    assert hub.wants(user_group(alice), message_created(alice))


def test_a_copy_from_elsewhere_or_of_unknown_origin_is_wanted(alice_hub):
    hub, alice = alice_hub
    assert hub.wants(user_group(alice), message_created(alice, origin="c9"))  # another process's
    assert hub.wants(user_group(alice), message_created(alice, origin=None))  # REST, admin


def test_an_event_rendered_to_its_origin_is_wanted(alice_hub):
    hub, alice = alice_hub
    reaction = {
        "type": "reaction.added",
        "actor": alice,
        "origin": "c1",
        "conversation": {"id": "conv1", "kind": "direct"},
        "message": {"id": "m1", "seq": 1, "rev": 2},
        "emoji": "+1",
        "count": 1,
    }
    assert hub.wants(user_group(alice), reaction)  # ExpressChat shows the count on every device


def test_a_user_without_connections_here_wants_nothing(alice_hub, make_user):
    hub, _alice = alice_hub
    bob = make_user("Bob").user.public_id
    assert not hub.wants(user_group(bob), message_created(bob, origin=None))


def test_a_conversations_group_is_wanted_by_a_hub_with_connections_only(alice_hub, make_hub):  # noqa: F811
    hub, alice = alice_hub
    assert hub.wants(conversation_group("conv1"), message_created(alice, kind="group"))
    idle = make_hub(EXPRESS_CHAT, [])
    assert not idle.wants(conversation_group("conv1"), message_created(alice, kind="group"))


def test_a_copy_that_moves_its_origin_into_a_room_is_wanted(alice_hub):
    hub, alice = alice_hub
    assert hub.wants(user_group(alice), message_created(alice) | {"joins": [alice]})


@pytest.mark.parametrize(
    "protocol",
    [CHAT_SERVER, PRIVATE_CHAT],
    ids=["echoes its own message", "renders after a read"],
)
def test_protocols_that_echo_or_prepare_want_the_senders_copy(make_hub, make_user, protocol):  # noqa: F811
    hub = make_hub(protocol, [])
    alice = make_user("Alice").user
    add_connection(hub, alice, "c1", greeted=True)
    assert hub.wants(user_group(alice.public_id), message_created(alice.public_id))
