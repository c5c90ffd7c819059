"""ExpressChat's inbound half: one handler per client event.

Each validates its payload's shape, calls one gateway action (or one service or selector
through `actions.call`) with the connection's user, and returns what goes back to the caller.
The original client sends one JSON object per event; `handler` unpacks it.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from accounts import services as account_services
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable
from chatproject.core.timefmt import iso_ms
from gateway import actions
from gateway.actions import call
from gateway.connection import Connection
from gateway.protocol import Handler, Outcome
from groups import selectors as group_selectors
from groups import services as group_services
from messaging import selectors as msg_selectors
from messaging import services as msg_services

from .state import EXTENSIONS, ExpressChatState
from .wire import (
    GROUP,
    PERSONAL,
    SELF,
    group_chat_payload,
    personal_message,
    presence_payload,
    seen_by_payload,
    self_message,
    sent_ack,
    sync_payload,
)

HANDLERS: dict[str, Handler] = {}
PayloadHandler = Callable[[Connection, dict[str, Any]], Awaitable[Outcome]]


def handler(name: str) -> Callable[[PayloadHandler], PayloadHandler]:
    """Register `fn` for client event `name`. ExpressChat payloads are one JSON object (the
    first argument; a missing one counts as {}); other arguments are ignored, as the original
    server did."""

    def register(fn: PayloadHandler) -> PayloadHandler:
        async def unpack(conn: Connection, args: list[Any]) -> Outcome:
            return await fn(conn, payload_dict(args[0] if args else None))

        HANDLERS[name] = unpack
        return fn

    return register


def _invalid(field_name: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, {"field": field_name})


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or not is_storable(value):
        raise _invalid(key, f"{key} must be a non-empty string.")
    return value


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(key, f"{key} must be a non-negative integer.")
    return value


def _read_forms(data: dict[str, Any]) -> dict[str, Any]:
    """The ways a client names what it has read: `Seq` (up to this message), `MessageIds` (a
    list; up to the newest of them) or `LastMessageId`. The service checks the ids."""
    return {
        "up_to_seq": _int(data, "Seq"),
        "message_ids": data.get("MessageIds"),
        "last_message_id": data.get("LastMessageId"),
    }


def payload_dict(data: object) -> dict[str, Any]:
    """ExpressChat payloads are one JSON object; a missing payload counts as {}."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _invalid("payload", "The payload must be a JSON object.")
    return data


def _ids(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise _invalid(key, f"{key} must be a list of user ids.")
    return value


def _message_ref(data: dict[str, Any]) -> dict[str, Any]:
    """`ChatId` and `Id` of the message an event names (the service checks they belong)."""
    return {"conversation_id": _str(data, "ChatId"), "message_id": _str(data, "Id")}


@handler("fetch-user-details")
async def fetch_user_details(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client asks for its own profile."""
    details = {"Name": conn.user.display_name, "Email": conn.user.email or "", "Id": conn.user_id}
    return Outcome([("user-details", details)], details)


SEARCH_REPLIES = {"Search": ("searched-user", 8), "Add": ("added-user-match", 3)}


@handler("search-user")
async def search_user(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client searches users by name (plain text, never a pattern)."""
    text = _str(data, "Name")
    kind = data.get("Type")
    if not isinstance(kind, str) or kind not in SEARCH_REPLIES:
        raise _invalid("Type", 'Type must be "Search" or "Add".')
    event, limit = SEARCH_REPLIES[kind]
    users = await call(account_services.user_search, user=conn.user, query=text, limit=limit)
    expose = settings.CHAT["SEARCH_EXPOSE_EMAILS"]
    found = [
        {"_id": u.public_id, "Name": u.display_name, "Email": (u.email or "") if expose else ""}
        for u in users
    ]
    return Outcome([(event, {"Users": found})], {"Users": found})


@handler("check-chat")
async def check_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called before opening a chat with a user: does one exist already?"""
    receiver = _str(data, "Receiver")
    partner = await call(msg_services.chat_partner_get, user=conn.user, other_user_id=receiver)
    conversation = await call(msg_selectors.direct_conversation_find, user=conn.user, other=partner)
    if conversation is None:
        result = {"Exists": 0, "Partner": partner.display_name}
    else:
        result = {"Exists": 1, "ChatId": conversation.public_id, "Partner": partner.display_name}
    return Outcome([("create-chat-result", result)], result)


@handler("create-personal-chat")
async def create_personal_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called to start a direct chat. Names are computed here, never taken from the payload;
    an existing chat for the pair is answered like check-chat (no duplicates)."""
    receiver = _str(data, "Receiver")
    conversation, partner, created = await call(
        msg_services.direct_conversation_get_or_create, user=conn.user, other_user_id=receiver
    )
    if not created:
        result = {"Exists": 1, "ChatId": conversation.public_id, "Partner": partner.display_name}
        return Outcome([("create-chat-result", result)], result)
    result = {"ChatId": conversation.public_id, "Partner": partner.display_name}
    return Outcome([("create-personal-chat-creator", result)], result)


@handler("send-personal-message")
async def send_personal_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client posts into a direct chat. The receiver gets
    receive-personal-message through the bus; the sender gets the ack."""
    return await _send(conn, data, _str(data, "ChatId"), PERSONAL)


async def _send(conn: Connection, data: dict[str, Any], chat_id: str, kind: str) -> Outcome:
    """A send event of any chat kind, through the batcher: the keys the three events share."""
    sent = await actions.send(
        conn,
        conversation_id=chat_id,
        content=data.get("Content"),
        client_message_id=data.get("ClientMessageId"),
        kind=kind,
        reply_to=data.get("ReplyTo"),
        message_kind=data.get("Kind"),
        attachment_id=data.get("AttachmentId"),
    )
    return Outcome([], sent_ack(sent.message, sent.created))


@handler("read-personal-message")
async def read_personal_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client has read a direct chat (up to `Seq`, default everything)."""
    return await _mark_read(conn, data, id_key="ChatId", kind=PERSONAL)


async def _mark_read(conn: Connection, data: dict[str, Any], *, id_key: str, kind: str) -> Outcome:
    conversation, pointer = await actions.mark_read(
        conn, conversation_id=_str(data, id_key), **_read_forms(data), kind=kind
    )
    return Outcome([], {"ChatId": conversation.public_id, "Seq": pointer})


@handler("fetch-personal-chat")
async def fetch_personal_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client opens a direct chat: one page of history, newest first."""
    page = await call(
        msg_selectors.conversation_page,
        user=conn.user,
        conversation_id=_str(data, "ChatId"),
        kind=PERSONAL,
        before=_int(data, "Before"),
        limit=_int(data, "Limit") or None,
    )
    payload = {
        "Messages": [
            personal_message(m, page.read_pointers, page.reactions.get(m.pk, ())) for m in page.messages
        ],
        "UserId": conn.user_id,
        "User": conn.user.display_name,
        "Partner": page.partner.display_name if page.partner else None,
        "ChatId": page.conversation.public_id,
        "Rev": page.conversation.last_rev,
    }
    return Outcome([("personal-chat", payload)], None)


@handler("fetch-self-chat")
async def fetch_self_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client opens its notes-to-self chat."""
    self_id = await actions.self_conversation_id(conn)
    page = await call(
        msg_selectors.conversation_page,
        user=conn.user,
        conversation_id=self_id,
        kind=SELF,
        before=_int(data, "Before"),
        limit=_int(data, "Limit") or None,
    )
    payload = {
        "Messages": [self_message(m, page.reactions.get(m.pk, ())) for m in page.messages],
        "Name": conn.user.display_name,
        "ChatId": self_id,
        "Rev": page.conversation.last_rev,
    }
    return Outcome([("self-chat", payload)], None)


@handler("send-self-message")
async def send_self_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client writes a note to self. Nobody else is told."""
    state: ExpressChatState = conn.state
    if state.self_conversation_id is None:
        state.self_conversation_id = await actions.self_conversation_id(conn)
    return await _send(conn, data, state.self_conversation_id, SELF)


@handler("create-group-chat")
async def create_group_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called to create a group; the caller becomes its owner. Members hear of it through the bus."""
    conversation = await call(
        group_services.group_create,
        user=conn.user,
        name=data.get("Name"),
        description=data.get("Description") or "",
        member_ids=_ids(data, "Participants"),
    )
    result = {"GroupId": conversation.public_id, "Name": conversation.title}
    return Outcome([("create-group-chat-creator", result)], result)


@handler("send-group-message")
async def send_group_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a member posts into a group; the others get receive-group-message."""
    return await _send(conn, data, _str(data, "GroupId"), GROUP)


@handler("read-group-message")
async def read_group_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a member has read a group (up to `Seq`, default everything)."""
    return await _mark_read(conn, data, id_key="GroupId", kind=GROUP)


@handler("fetch-group-chat")
async def fetch_group_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a member opens a group: members, and one page of history, newest first."""
    page = await call(
        group_selectors.group_page,
        user=conn.user,
        group_id=_str(data, "GroupId"),
        before=_int(data, "Before"),
        limit=_int(data, "Limit") or None,
    )
    payload = group_chat_payload(page, conn.user_id, system=EXTENSIONS in conn.capabilities)
    return Outcome([("group-chat", payload)], None)


@handler("add-member")
async def add_member(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when an admin adds a user; refusals answer with add-member-fail."""
    group_id, member = _str(data, "GroupId"), _str(data, "Member")
    try:
        await call(group_services.group_member_add, user=conn.user, group_id=group_id, member_id=member)
    except ApplicationError as error:
        # The original's two texts; the service's own message ("Already in Group", "The group
        # is full.", ...) for everything else.
        text = (
            "You Should be admin to add a member"
            if error.code == ErrorCode.PERMISSION_DENIED
            else error.message
        )
        return Outcome([("add-member-fail", {"Message": text})], error=error)
    return Outcome([], {"ChatId": group_id, "Member": member})


@handler("change-admin")
async def change_admin(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when an admin hands admin rights to another member (and steps down)."""
    group_id = _str(data, "GroupId")
    await call(
        group_services.group_admin_change,
        user=conn.user,
        group_id=group_id,
        member_id=_str(data, "Member"),
        hand_over=True,
    )
    return Outcome([("change-admin-success-creator", {"GroupId": group_id})], {"GroupId": group_id})


@handler("kickout")
async def kickout(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when an admin removes a member."""
    group_id, member = _str(data, "GroupId"), _str(data, "Member")
    await call(group_services.group_member_remove, user=conn.user, group_id=group_id, member_id=member)
    return Outcome([("kickout-successful", {"GroupId": group_id})], {"GroupId": group_id, "Member": member})


@handler("leave-grp")
async def leave_group(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a member leaves; the last admin is refused with group-left-fail."""
    group_id = _str(data, "GroupId")
    try:
        await call(group_services.group_leave, user=conn.user, group_id=group_id)
    except ApplicationError as error:
        if error.code != ErrorCode.CONFLICT:
            raise
        return Outcome([("group-left-fail", {"Message": error.message})], error=error)
    result = {"Message": "Group Left Successfully", "GroupId": group_id}
    return Outcome([("group-left-success", result)], result)


@handler("delete-grp")
async def delete_group(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when an admin deletes a group."""
    group_id = await call(group_services.group_delete, user=conn.user, group_id=_str(data, "GroupId"))
    return Outcome([("delete-group-chat-creator", {"GroupId": group_id})], {"GroupId": group_id})


@handler("mark-read")
async def mark_read(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client has read any of its chats up to `Seq`, the newest of
    `MessageIds`, or `LastMessageId` (default: everything). The reader's devices get `unread`;
    the other members get the read receipt unless the reader turned receipts off."""
    conversation, pointer = await actions.mark_read(
        conn, conversation_id=_str(data, "ChatId"), **_read_forms(data)
    )
    unread = max(conversation.last_seq - pointer, 0)
    return Outcome([], {"ChatId": conversation.public_id, "Seq": pointer, "Unread": unread})


@handler("message-delivered")
async def message_delivered(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called by a client that shows delivered receipts, when a chat's messages up to `Seq`
    (default: the newest) reached this device. Their senders get `message-delivered`."""
    conversation, pointer = await actions.mark_delivered(
        conn, conversation_id=_str(data, "ChatId"), up_to_seq=_int(data, "Seq")
    )
    return Outcome([], {"ChatId": conversation.public_id, "Seq": pointer})


@handler("fetch-seen-by")
async def fetch_seen_by(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called to show who read one message (named by `Seq` or `MessageId`) and who only
    received it."""
    seen = await call(
        msg_selectors.message_seen_by,
        user=conn.user,
        conversation_id=_str(data, "ChatId"),
        message_id=_str(data, "MessageId", required=False),
        seq=_int(data, "Seq"),
    )
    payload = seen_by_payload(seen)
    return Outcome([("seen-by", payload)], payload)


@handler("typing")
async def typing(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called while the user types in a chat (again every few seconds while they go on). The
    other members get `typing` with `ExpiresIn`; at most one per TYPING_MIN_INTERVAL_SECONDS
    per conversation from this connection is relayed (`Relayed` in the ack). Never stored."""
    chat_id = _str(data, "ChatId")
    relayed = await actions.typing(conn, conversation_id=chat_id, started=True)
    return Outcome([], {"ChatId": chat_id, "Relayed": relayed})


@handler("stop-typing")
async def stop_typing(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the user stopped typing (cleared the box, sent, left the chat). Relayed only
    when this connection's typing may still show, so repeats cost nothing."""
    chat_id = _str(data, "ChatId")
    relayed = await actions.typing(conn, conversation_id=chat_id, started=False)
    return Outcome([], {"ChatId": chat_id, "Relayed": relayed})


@handler("presence-state")
async def presence_state(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the app goes to the foreground or the background on this device (the
    seeds' `active app` / `background app`). A new connection starts in the foreground."""
    state = data.get("State")
    await actions.presence_set(conn, state)
    return Outcome([], {"State": state})


@handler("fetch-presence")
async def fetch_presence(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called to learn whether users are online: those sharing a chat with the caller (and the
    caller); other ids are left out of the answer."""
    found = await actions.presence_fetch(conn, data.get("UserIds"))
    users = [presence_payload(p.user_id, p.state, iso_ms(p.last_seen)) for p in found]
    return Outcome([("presence-list", {"Users": users})], {"Users": users})


@handler("edit-message")
async def edit_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the sender changes the text of their message. The other members get
    `message-edited`; the ack carries the new `EditedAt`."""
    message = await call(
        msg_services.message_edit,
        user=conn.user,
        content=data.get("Content"),
        origin=conn.id,
        **_message_ref(data),
    )
    return Outcome(
        [],
        {
            "ChatId": message.conversation.public_id,
            "Id": message.public_id,
            "Seq": message.seq,
            "Rev": message.rev,
            "EditedAt": iso_ms(message.edited_at),
        },
    )


@handler("delete-message")
async def delete_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the sender (or, in a group, an owner or admin) deletes a message. Every
    member's connection gets `message-deleted` with `Hidden` false."""
    message = await call(msg_services.message_delete, user=conn.user, **_message_ref(data))
    return Outcome(
        [],
        {
            "ChatId": message.conversation.public_id,
            "Id": message.public_id,
            "Seq": message.seq,
            "Rev": message.rev,
        },
    )


async def _react(conn: Connection, data: dict[str, Any], service) -> Outcome:
    message, count, changed = await call(
        service, user=conn.user, emoji=data.get("Emoji"), **_message_ref(data)
    )
    mine = await call(msg_selectors.reactions_of_user, user=conn.user, message=message)
    return Outcome(
        [],
        {
            "ChatId": message.conversation.public_id,
            "Id": message.public_id,
            "Seq": message.seq,
            "Emoji": data["Emoji"],
            "Count": count,
            "Changed": changed,
            "Rev": message.rev,
            "MyReactions": mine,
        },
    )


@handler("react")
async def react(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a member puts an emoji on a message. Idempotent (`Changed` false when it was
    there already); members get `reaction` only on a change."""
    return await _react(conn, data, msg_services.reaction_add)


@handler("unreact")
async def unreact(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when a member takes their emoji off a message. Idempotent, like `react`."""
    return await _react(conn, data, msg_services.reaction_remove)


@handler("sync")
async def sync(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called after a reconnect, or when a live event's `Rev` shows a hole: `Positions` maps
    chat ids to the last `Rev` the client has; `All` adds every other chat of the caller from
    0. The answer (ack, and `synced` for clients without acks) holds each chat's changes since."""
    include_all = data.get("All", False)
    if not isinstance(include_all, bool):
        raise _invalid("All", "All must be true or false.")
    changes = await actions.sync(conn, positions=data.get("Positions", {}), include_all=include_all)
    payload = sync_payload(changes)
    return Outcome([("synced", payload)], payload)


@handler("auth")
async def auth(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called by a client that renewed its access token (`{"token": <access>}`): a token of the
    same user extends the connection past the old token's expiry."""
    return Outcome([], {"expires_at": await actions.reauthenticate(conn, data.get("token"))})


def _chat_request(view: msg_selectors.ChatRequestView) -> dict[str, Any]:
    request = view.request
    return {
        "RequestId": request.public_id,
        "ChatId": request.conversation.public_id,
        "State": request.state,
        "Requester": {"Id": request.requester.public_id, "Name": request.requester.display_name},
        "Recipient": {"Id": request.recipient.public_id, "Name": request.recipient.display_name},
        "CreatedAt": iso_ms(request.created_at),
        "DecidedAt": iso_ms(request.decided_at) if request.decided_at else None,
        "MessageCount": view.message_count,
        "LastMessage": view.last_message,
    }


@handler("send-chat-request")
async def send_chat_request(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Extension (§17). Called to ask a user for a chat: the caller may write into `ChatId` at
    once; the other user gets `chat-request` and nothing else until they accept."""
    receiver = _str(data, "Receiver")
    made, created = await call(msg_services.chat_request_create, user=conn.user, other_user_id=receiver)
    view = await call(msg_selectors.chat_request_get, user=conn.user, request_id=made.public_id)
    return Outcome(data=_chat_request(view) | {"Created": created})


async def _decide(conn: Connection, data: dict[str, Any], service: Callable[..., Any]) -> Outcome:
    decided = await call(service, user=conn.user, request_id=_str(data, "RequestId"))
    view = await call(msg_selectors.chat_request_get, user=conn.user, request_id=decided.public_id)
    return Outcome(data=_chat_request(view))


@handler("accept-chat-request")
async def accept_chat_request(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Extension (§17). Called when the recipient accepts a request: the chat joins their list."""
    return await _decide(conn, data, msg_services.chat_request_accept)


@handler("decline-chat-request")
async def decline_chat_request(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Extension (§17). Called when the recipient declines a request."""
    return await _decide(conn, data, msg_services.chat_request_decline)


@handler("fetch-chat-requests")
async def fetch_chat_requests(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Extension (§17). Called to list requests made to the caller (`Box` "received", the
    default) or by the caller ("sent"), in one `State` (default "pending"); answered with
    `chat-requests` and the ack."""
    box = _str(data, "Box", required=False) or "received"
    state = _str(data, "State", required=False) or "pending"
    views = await call(msg_selectors.chat_requests_for_user, user=conn.user, box=box, state=state)
    result = {"Requests": [_chat_request(v) for v in views]}
    return Outcome([("chat-requests", result)], result)


async def _membership(conn: Connection, data: dict[str, Any], service: Callable[..., Any]) -> Outcome:
    chat_id = _str(data, "ChatId")
    membership = await call(service, user=conn.user, conversation_id=chat_id)
    return Outcome(data={"ChatId": chat_id, "Left": membership.left_at is not None})


@handler("leave-chat")
async def leave_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Extension (§17). Called to leave a chat that started as a request of its own: both users
    get `chat-member-left`; the pair's one chat is a `conflict`."""
    return await _membership(conn, data, msg_services.conversation_leave)


@handler("rejoin-chat")
async def rejoin_chat(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Extension (§17). Called by a user who left such a chat to come back to it."""
    return await _membership(conn, data, msg_services.conversation_rejoin)
