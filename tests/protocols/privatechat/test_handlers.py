"""The "self" positions of the app's events (issue 18): each event the app sends its own id in
claims that value, at the spec's position (§2.5), to bind an unbound socket; on a bound socket
only the handle it was bound with passes there. A public id, another live handle of the same
user, or anything else is ignored. In process, against the database's handles."""

from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async

from accounts import app_logins, tenancy
from accounts.models import App
from chatproject.core.errors import ApplicationError
from gateway.protocols.privatechat import PROTOCOL, wire
from gateway.protocols.privatechat.handlers import SELF_ARGUMENT, _require_self
from gateway.protocols.privatechat.state import PrivateChatState

pytestmark = pytest.mark.django_db(transaction=True)
ROOM = "0123456789abcdef01234567"
FRIEND = "89abcdef0123456789abcdef"


def with_self(event: str, me: object) -> list:
    """The event's arguments as the app sends them, `me` in its self position."""
    return {
        wire.IDENTITY: [me],
        wire.GET_ACTIVE_CHATS: [me],
        wire.NOTIFY_ONLINE: [me],
        wire.ACTIVE_APP: [me],
        wire.BACKGROUND_APP: [me],
        wire.READ_MESSAGES: [ROOM, me],
        wire.ADD_FRIEND: [FRIEND, me],
        wire.SEND_MESSAGE: [{"senderId": me, "recipientId": FRIEND, "roomId": ROOM, "message": "hi"}],
        wire.INIT_CHAT: [{"userId": me, "friendId": FRIEND}],
    }[event]


SELF_EVENTS = [
    wire.IDENTITY,
    wire.GET_ACTIVE_CHATS,
    wire.NOTIFY_ONLINE,
    wire.ACTIVE_APP,
    wire.BACKGROUND_APP,
    wire.READ_MESSAGES,
    wire.ADD_FRIEND,
    wire.SEND_MESSAGE,
    wire.INIT_CHAT,
]


def test_the_self_positions_are_exactly_the_issues_list():
    assert set(SELF_ARGUMENT) == set(SELF_EVENTS)


@pytest.mark.parametrize("event", SELF_EVENTS)
def test_each_self_position_claims_its_value_and_only_there(event):
    claimed = PROTOCOL.claim(event, with_self(event, "the-handle-value"))
    assert claimed is not None and claimed.handle == "the-handle-value"
    # The same value elsewhere in the event claims nothing; so do non-strings and empties.
    assert PROTOCOL.claim(event, with_self(event, None)) is None
    assert PROTOCOL.claim(event, with_self(event, "")) is None
    assert PROTOCOL.claim(event, with_self(event, {"$ne": None})) is None
    assert PROTOCOL.claim(event, with_self(event, "x" * 65)) is None


@pytest.mark.parametrize(
    "event", [wire.JOIN_ROOM, wire.LEAVE_ROOM, wire.FETCH_MESSAGES, wire.GET_ONLINE_INFO, wire.NOTIFY_TYPING]
)
def test_events_without_a_self_position_claim_nothing(event):
    assert PROTOCOL.claim(event, ["the-handle-value", "the-handle-value"]) is None


@pytest.fixture
def bound(db):
    app = App.objects.create(name="Private chat")
    user = app_logins.app_user_register(app=app, username="alice", password="a long password 1")
    first = tenancy.id_handle_issue(app=app, external_id=user.external_id)
    second = tenancy.id_handle_issue(app=app, external_id=user.external_id)
    conn = SimpleNamespace(state=PrivateChatState(), session_id=f"h:{first.handle.public_id}", user=user)
    return conn, user, first.secret, second.secret


@pytest.mark.parametrize("event", SELF_EVENTS)
async def test_only_the_bound_handle_passes_in_each_self_position(bound, event):
    conn, user, handle, other_handle = bound
    for value in (user.public_id, other_handle, handle[:-1], handle + "x"):
        with pytest.raises(ApplicationError):
            await _require_self(conn, event, with_self(event, value))
    assert conn.state.handle_digest is None
    await _require_self(conn, event, with_self(event, handle))
    assert conn.state.handle_digest is not None
    # Once seen, it is compared in memory; anything else is still ignored.
    await _require_self(conn, event, with_self(event, handle))
    with pytest.raises(ApplicationError):
        await _require_self(conn, event, with_self(event, user.public_id))


async def test_a_revoked_handle_passes_nowhere(bound):
    conn, user, handle, _other = bound
    await sync_to_async(tenancy.id_handle_revoke)(app=user.app, handle_id=conn.session_id[2:])
    with pytest.raises(ApplicationError):
        await _require_self(conn, wire.IDENTITY, [handle])
