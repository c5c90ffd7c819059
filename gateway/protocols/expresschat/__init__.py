"""The ExpressChat wire protocol (namespace "/" and the /ws/ consumer).

Two halves, both thin:
- inbound: one handler per client event: validate the payload's shape, call one service or
  selector with the connection's user, return what goes back to the caller;
- outbound: `render(event)`: a domain event from the bus -> the ExpressChat events it becomes,
  each with its audience. Pure functions of their input.

Names, keys, id and timestamp formats follow the original server exactly. Compatible
extensions (ignored by the original client): an ack on every event
(`{"ok": true, "data": ...}` / `{"ok": false, "error": {...}}`), `ClientMessageId` on sends,
`Id`/`Seq`/`Timestamp`/`SenderId` on delivered messages, `Before`/`Limit` on fetches, and the
receipt, unread, typing and presence events at the end of this module (docs/protocol.md §11),
then edits, deletes, replies and reactions (§13), and resync with `Rev` on every message event
(§14).
"""

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from accounts import services as account_services
from chatproject.bus import publish_now
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.timefmt import iso_ms
from gateway import presence
from gateway.batching import send_batcher
from gateway.connection import Connection
from gateway.sync import call
from groups import selectors as group_selectors
from groups import services as group_services
from messaging import events as msg_events
from messaging import selectors as msg_selectors
from messaging import services as msg_services
from messaging.models import Conversation, Message
from messaging.services import SendRequest, SendResult

PERSONAL = Conversation.Kind.DIRECT
SELF = Conversation.Kind.SELF
GROUP = Conversation.Kind.GROUP

AUTH_FAILURE = "auth-failure"
AUTH_FAILURE_REASON = "Authentication failed"

# Roles a recipient can have in a domain event: who caused it, and whom it is about.
ACTOR = "actor"
SUBJECT = "subject"
ALL = "all"


@dataclass(frozen=True)
class Emit:
    """One outbound event: sent `to` everyone the bus target reaches (ALL) or only the event's
    ACTOR or SUBJECT among them, minus the recipients holding a role listed in `skip`."""

    name: str
    payload: Any
    to: str = ALL
    skip: tuple[str, ...] = ()
    # A read or delivered receipt: never sent to recipients who turned read receipts off.
    receipt: bool = False
    # Not to the connection the change came from (the event's `origin`): it has its ack.
    skip_origin: bool = False


@dataclass
class Outcome:
    """What a handler sends back: events to the calling connection, and the ack's data, or
    the error when the protocol answers a refusal with its own failure event."""

    emits: list[tuple[str, Any]] = field(default_factory=list)
    data: Any = None
    error: ApplicationError | None = None


Handler = Callable[[Connection, dict[str, Any]], Awaitable[Outcome]]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


# --- payload validation -------------------------------------------------------------------


def _invalid(field_name: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, {"field": field_name})


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
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


# --- wire shapes (pure) -------------------------------------------------------------------


def user_id_payload(conn: Connection) -> dict[str, str]:
    return {"userId": conn.user_id, "userName": conn.user.display_name}


def personal_chat_list(summaries: list[msg_selectors.ConversationSummary]) -> dict[str, Any]:
    return {
        "PersonalChatList": [
            {
                "_id": s.id,
                "LastChat": iso_ms(s.last_message_at),
                "Partner": s.partner_name,
                "Unread": s.unread,
                "PartnerId": s.partner_id,
                "Seq": s.last_seq,
                "Rev": s.last_rev,
            }
            for s in summaries
        ]
    }


def group_chat_list(summaries: list[msg_selectors.ConversationSummary]) -> dict[str, Any]:
    return {
        "GroupChatList": [
            {
                "_id": s.id,
                "Name": s.title,
                "LastChat": iso_ms(s.last_message_at),
                "Unread": s.unread,
                "Seq": s.last_seq,
                "Rev": s.last_rev,
            }
            for s in summaries
        ]
    }


def _read_status(message: Message, pointers: dict[str, int]) -> dict[str, str]:
    return {uid: ("Read" if message.seq <= seq else "Unread") for uid, seq in pointers.items()}


def personal_message(
    message: Message, pointers: dict[str, int], reactions: Sequence[msg_selectors.ReactionCount] = ()
) -> dict[str, Any]:
    return {
        "Sender": message.sender.public_id if message.sender else None,
        "ReadStatus": _read_status(message, pointers),
        "Timestamp": iso_ms(message.created_at),
        "_id": message.public_id,
        "Seq": message.seq,
        "Hidden": message.hidden_at is not None,
        "Deleted": message.deleted_at is not None,
    } | message_extras(message, reactions)


def self_message(message: Message, reactions: Sequence[msg_selectors.ReactionCount] = ()) -> dict[str, Any]:
    return {
        "Timestamp": iso_ms(message.created_at),
        "_id": message.public_id,
        "Seq": message.seq,
        "Hidden": message.hidden_at is not None,
        "Deleted": message.deleted_at is not None,
    } | message_extras(message, reactions)


def sent_ack(message: Message, created: bool) -> dict[str, Any]:
    return {
        "Id": message.public_id,
        "Seq": message.seq,
        "ChatId": message.conversation.public_id,
        "Timestamp": iso_ms(message.created_at),
        "ClientMessageId": message.client_message_id,
        "Duplicate": not created,
        "Rev": message.rev,
    }


def error_payload(error: ApplicationError, event: str) -> dict[str, Any]:
    return {"code": str(error.code), "message": error.message, "extra": error.extra, "event": event}


def auth_failure_payload(code: str) -> dict[str, str]:
    return {"reason": AUTH_FAILURE_REASON, "code": code}


# --- connection start ---------------------------------------------------------------------


def on_connect(conn: Connection, summaries: list[msg_selectors.ConversationSummary]) -> list[tuple[str, Any]]:
    """The events a freshly authenticated connection receives, in the original order, from the
    user's direct and group conversations (read by the hub with the session check)."""
    personal = [s for s in summaries if s.kind == PERSONAL]
    groups = [s for s in summaries if s.kind == GROUP]
    return [
        ("user-id", user_id_payload(conn)),
        ("personal-chat-list", personal_chat_list(personal)),
        ("group-chat-list", group_chat_list(groups)),
    ]


# --- inbound handlers ---------------------------------------------------------------------


@handler("fetch-user-details")
async def fetch_user_details(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client asks for its own profile."""
    details = {"Name": conn.user.display_name, "Email": conn.user.email, "Id": conn.user_id}
    return Outcome([("user-details", details)], details)


SEARCH_REPLIES = {"Search": ("searched-user", 8), "Add": ("added-user-match", 3)}


@handler("search-user")
async def search_user(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client searches users by name (plain text, never a pattern)."""
    text = _str(data, "Name")
    kind = data.get("Type")
    if kind not in SEARCH_REPLIES:
        raise _invalid("Type", 'Type must be "Search" or "Add".')
    event, limit = SEARCH_REPLIES[kind]
    users = await call(account_services.user_search, user=conn.user, query=text, limit=limit)
    expose = settings.CHAT["SEARCH_EXPOSE_EMAILS"]
    found = [{"_id": u.public_id, "Name": u.display_name, "Email": u.email if expose else ""} for u in users]
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
    request = SendRequest(
        conn.user,
        chat_id,
        data.get("Content"),
        data.get("ClientMessageId"),
        kind,
        reply_to=data.get("ReplyTo"),
        message_kind=data.get("Kind"),
        attachment_id=data.get("AttachmentId"),
        origin=conn.id,
    )
    return _sent(await send_batcher.submit(request))


def _sent(result: SendResult) -> Outcome:
    if result.error is not None:
        raise result.error
    return Outcome([], sent_ack(result.message, result.created))


@handler("read-personal-message")
async def read_personal_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client has read a direct chat (up to `Seq`, default everything)."""
    return await _mark_read(conn, data, id_key="ChatId", kind=PERSONAL)


async def _mark_read(conn: Connection, data: dict[str, Any], *, id_key: str, kind: str) -> Outcome:
    conversation, pointer = await call(
        msg_services.conversation_mark_read,
        user=conn.user,
        conversation_id=_str(data, id_key),
        **_read_forms(data),
        kind=kind,
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
    conversation = await call(msg_services.self_conversation_ensure, user=conn.user)
    page = await call(
        msg_selectors.conversation_page,
        user=conn.user,
        conversation_id=conversation.public_id,
        kind=SELF,
        before=_int(data, "Before"),
        limit=_int(data, "Limit") or None,
    )
    payload = {
        "Messages": [self_message(m, page.reactions.get(m.pk, ())) for m in page.messages],
        "Name": conn.user.display_name,
        "ChatId": conversation.public_id,
        "Rev": page.conversation.last_rev,
    }
    return Outcome([("self-chat", payload)], None)


@handler("send-self-message")
async def send_self_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client writes a note to self. Nobody else is told."""
    self_id = conn.extra.get("self_conversation_id")
    if self_id is None:
        conversation = await call(msg_services.self_conversation_ensure, user=conn.user)
        self_id = conn.extra["self_conversation_id"] = conversation.public_id
    return await _send(conn, data, self_id, SELF)


# --- groups ---------------------------------------------------------------------------------


def _ids(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise _invalid(key, f"{key} must be a list of user ids.")
    return value


def group_message(
    message: Message, pointers: dict[str, int], reactions: Sequence[msg_selectors.ReactionCount] = ()
) -> dict[str, Any]:
    return {
        "Sender": message.sender.display_name if message.sender else None,
        "ReadStatus": _read_status(message, pointers),
        "Timestamp": iso_ms(message.created_at),
        "Id": message.public_id,
        "Seq": message.seq,
        "SenderId": message.sender.public_id if message.sender else None,
        "Kind": message.kind,
        "Hidden": message.hidden_at is not None,
        "Deleted": message.deleted_at is not None,
    } | message_extras(message, reactions)


def group_chat_payload(page: group_selectors.GroupPage, viewer_id: str) -> dict[str, Any]:
    admins = [m.id for m in page.members if m.role in group_selectors.ADMIN_ROLES]
    owner = next((m.id for m in page.members if m.role == "owner"), admins[0] if admins else None)
    return {
        # The original has one admin; the client shows admin controls when UserId == Admin, so
        # an admin viewing the group sees themselves here. `Admins` and `Owner` say it all.
        "Admin": viewer_id if viewer_id in admins else owner,
        "Admins": admins,
        "Owner": owner,
        "Name": page.conversation.title,
        "Description": page.group.description if page.group else "",
        "AvatarUrl": page.group.avatar_url if page.group else "",
        "Participants": {m.id: m.name for m in page.members},
        "Messages": [
            group_message(m, page.read_pointers, page.reactions.get(m.pk, ())) for m in page.messages
        ],
        "GroupId": page.conversation.public_id,
        # Read before the messages: a client may take it as its resync position (§14.2).
        "Rev": page.conversation.last_rev,
    }


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
    return Outcome([("group-chat", group_chat_payload(page, conn.user_id))], None)


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


# --- outbound rendering (pure) ------------------------------------------------------------


def _delivered(message: dict[str, Any]) -> dict[str, Any]:
    delivered = {
        "Id": message["id"],
        "Seq": message["seq"],
        # `.get`: during a rolling deploy an older process may publish events without it.
        "Rev": message.get("rev"),
        "SenderId": message["sender_id"],
        "Timestamp": message["created_at"],
    }
    if message.get("reply_to"):
        delivered["ReplyTo"] = reply_to_payload(message["reply_to"])
    # `.get`: events of an older process have neither key.
    return delivered | media_keys(message.get("kind", "text"), message["content"], message.get("attachment"))


def render(event: dict[str, Any]) -> list[Emit]:
    """The ExpressChat events a domain event becomes, each with its audience."""
    renderer = RENDERERS.get(event.get("type"))
    return renderer(event) if renderer else []


def _conv(event: dict[str, Any]) -> tuple[str | None, str | None]:
    conversation = event.get("conversation") or {}
    return conversation.get("kind"), conversation.get("id")


def _render_message(event: dict[str, Any]) -> list[Emit]:
    kind, conv_id = _conv(event)
    message = event["message"]
    if message["kind"] == Message.Kind.SYSTEM:
        return _render_system_message(kind, conv_id, message)
    text = legacy_text(message["content"], message.get("attachment"))
    payload = {"ChatId": conv_id, "Content": text, "Sender": message["sender_name"]} | _delivered(message)
    # The sender's other connections (another tab, the phone) learn of it at once; an original
    # client ignores the event and sees the message in the history.
    echo = Emit("message-sent", payload, to=ACTOR, skip_origin=True)
    if kind == PERSONAL:
        return [Emit("receive-personal-message", payload, skip=(ACTOR,)), echo]
    if kind == GROUP:
        return [Emit("receive-group-message", payload, skip=(ACTOR,)), echo]
    return [echo]  # notes to self: only the writer's other connections


def _render_system_message(kind: str | None, conv_id: str | None, message: dict[str, Any]) -> list[Emit]:
    """Group system messages (member added, left, removed, renamed) as `system-message`, an
    extension event: original clients learn these facts from the group events and ignore it;
    clients that follow `Rev` see no hole. To every member, the actor's connections too (no
    ack carries the system message's `Rev`)."""
    if kind != GROUP:
        return []
    payload = {
        "ChatId": conv_id,
        "Content": message["content"],
        "Kind": Message.Kind.SYSTEM,
        "Id": message["id"],
        "Seq": message["seq"],
        "Rev": message.get("rev"),
        "SenderId": message["sender_id"],
        "Timestamp": message["created_at"],
    }
    return [Emit("system-message", payload)]


def _render_read(event: dict[str, Any]) -> list[Emit]:
    kind, conv_id = _conv(event)
    if kind == PERSONAL:
        payload = {"ChatId": conv_id, "Reader": event["actor"], "Seq": event["seq"]}
        return [Emit("read-personal-msg-ack", payload, skip=(ACTOR,), receipt=True)]
    if kind == GROUP:
        payload = {"Reader": event["actor"], "ChatId": conv_id, "Seq": event["seq"]}
        return [Emit("read-grp-msg-ack", payload, skip=(ACTOR,), receipt=True)]
    return []


def _render_conversation_created(event: dict[str, Any]) -> list[Emit]:
    kind, conv_id = _conv(event)
    if kind != PERSONAL:
        return []
    return [
        Emit(
            "create-personal-chat-partner", {"ChatId": conv_id, "Partner": event["actor_name"]}, skip=(ACTOR,)
        )
    ]


def _group_ref(event: dict[str, Any]) -> dict[str, Any]:
    return {"GroupId": event["conversation"]["id"]}


def _render_group_created(event: dict[str, Any]) -> list[Emit]:
    payload = _group_ref(event) | {"Name": event["conversation"]["title"]}
    return [Emit("create-group-chat-receiver", payload, skip=(ACTOR,))]


def _render_member_added(event: dict[str, Any]) -> list[Emit]:
    payload = {"ChatId": event["conversation"]["id"], "Member": event["subject"]}
    return [Emit("add-member-success", payload, skip=(SUBJECT,))]


def _render_joined(event: dict[str, Any]) -> list[Emit]:
    # `Name`: extension (the original sent only the id, so clients fetched the list again).
    payload = {"ChatId": event["conversation"]["id"], "Name": event["conversation"].get("title")}
    return [Emit("new-grp-added", payload, to=SUBJECT)]


def _render_member_removed(event: dict[str, Any]) -> list[Emit]:
    if event["reason"] == "kicked":
        payload = _group_ref(event) | {
            "GroupName": event["conversation"]["title"],
            "Member": event["subject"],
        }
        return [Emit("someone-kicked-out", payload, skip=(ACTOR, SUBJECT))]
    return [Emit("user-left-grp", _group_ref(event) | {"User": event["subject"]}, skip=(SUBJECT,))]


def _render_removed(event: dict[str, Any]) -> list[Emit]:
    if event["reason"] != "kicked":
        return []
    payload = _group_ref(event) | {"GroupName": event["conversation"]["title"]}
    return [Emit("kicked-out", payload, to=SUBJECT)]


def _render_admin_changed(event: dict[str, Any]) -> list[Emit]:
    payload = _group_ref(event) | {"Member": event["subject"], "Role": event["role"]}
    return [Emit("change-admin-success-receiver", payload, skip=(ACTOR,))]


def _render_group_deleted(event: dict[str, Any]) -> list[Emit]:
    return [Emit("delete-grp-success-receiver", _group_ref(event), skip=(ACTOR,))]


def _render_session_revoked(event: dict[str, Any]) -> list[Emit]:
    return [Emit(AUTH_FAILURE, auth_failure_payload(event.get("reason") or "revoked"))]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[Emit]]] = {
    "message.created": _render_message,
    "conversation.read": _render_read,
    "conversation.created": _render_conversation_created,
    "group.created": _render_group_created,
    "group.member_added": _render_member_added,
    "group.joined": _render_joined,
    "group.member_removed": _render_member_removed,
    "group.removed": _render_removed,
    "group.admin_changed": _render_admin_changed,
    "group.deleted": _render_group_deleted,
    "session.revoked": _render_session_revoked,
}


# --- moderation (compatible extension) -----------------------------------------------------
# The original protocol cannot take a message back. `message-deleted` tells the conversation's
# members to blank one: `Hidden` true when a moderator hid it, false when it was deleted.
# Clients that do not know the event keep showing the text until they fetch history again.


def _render_message_removed(event: dict[str, Any]) -> list[Emit]:
    _kind, conv_id = _conv(event)
    message = event["message"]
    payload = {
        "ChatId": conv_id,
        "Id": message["id"],
        "Seq": message["seq"],
        "Rev": message.get("rev"),
        "Hidden": event["type"] == "message.hidden",
    }
    return [Emit("message-deleted", payload)]


RENDERERS["message.hidden"] = _render_message_removed
RENDERERS["message.deleted"] = _render_message_removed


# --- receipts, unread counts, typing and presence (compatible extensions) ------------------
# New events in the original's naming style; docs/protocol.md has a section for each. Typing
# and presence are never stored: their handlers publish to the bus themselves.

TYPING_ACCESS_SECONDS = 5.0  # how long a connection reuses a typing membership check
TYPING_STATE_MAX = 64  # conversations whose typing state one connection keeps


@handler("mark-read")
async def mark_read(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client has read any of its chats up to `Seq`, the newest of
    `MessageIds`, or `LastMessageId` (default: everything). The reader's devices get `unread`;
    the other members get the read receipt unless the reader turned receipts off."""
    conversation, pointer = await call(
        msg_services.conversation_mark_read,
        user=conn.user,
        conversation_id=_str(data, "ChatId"),
        **_read_forms(data),
    )
    unread = max(conversation.last_seq - pointer, 0)
    return Outcome([], {"ChatId": conversation.public_id, "Seq": pointer, "Unread": unread})


@handler("message-delivered")
async def message_delivered(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called by a client that shows delivered receipts, when a chat's messages up to `Seq`
    (default: the newest) reached this device. Their senders get `message-delivered`."""
    conversation, pointer = await call(
        msg_services.conversation_mark_delivered,
        user=conn.user,
        conversation_id=_str(data, "ChatId"),
        up_to_seq=_int(data, "Seq"),
    )
    return Outcome([], {"ChatId": conversation.public_id, "Seq": pointer})


def seen_by_payload(seen: msg_selectors.SeenBy) -> dict[str, Any]:
    return {
        "ChatId": seen.conversation.public_id,
        "MessageId": seen.message.public_id,
        "Seq": seen.message.seq,
        "SeenBy": [{"UserId": r.id, "Name": r.display_name} for r in seen.seen_by],
        "DeliveredTo": [{"UserId": r.id, "Name": r.display_name} for r in seen.delivered_to],
        "SeenCount": seen.seen_count,
        "DeliveredCount": seen.delivered_count,
    }


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


async def _typing_target(conn: Connection, chat_id: str) -> msg_selectors.TypingTarget:
    """The membership check of a typing event, reused for a few seconds: typing arrives every
    second or so while someone types, and must stay cheap. A member removed from a group may
    still relay typing for up to TYPING_ACCESS_SECONDS."""
    cache = conn.extra.setdefault("typing_access", {})
    now = time.monotonic()
    hit = cache.get(chat_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    target = await call(msg_selectors.conversation_typing_target, user=conn.user, conversation_id=chat_id)
    if len(cache) >= TYPING_STATE_MAX:
        cache.clear()
    cache[chat_id] = (now + TYPING_ACCESS_SECONDS, target)
    return target


async def _typing_publish(conn: Connection, target: msg_selectors.TypingTarget, *, started: bool) -> None:
    event = msg_events.typing(
        conversation_id=target.conversation_id,
        kind=target.kind,
        user=conn.user,
        started=started,
        expires_in=_seconds(settings.CHAT["TYPING_TTL_SECONDS"]),
    )
    if target.kind == GROUP:
        await publish_now(event, conversation_ids=[target.conversation_id])
    else:
        await publish_now(event, user_ids=target.peer_ids)


def _seconds(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@handler("typing")
async def typing(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called while the user types in a chat (again every few seconds while they go on). The
    other members get `typing` with `ExpiresIn`; at most one per TYPING_MIN_INTERVAL_SECONDS
    per conversation from this connection is relayed (`Relayed` in the ack). Never stored."""
    chat_id = _str(data, "ChatId")
    target = await _typing_target(conn, chat_id)
    state = conn.extra.setdefault("typing", {})  # chat id -> [last relayed start, still typing]
    now = time.monotonic()
    last = state.get(chat_id)
    if last is not None and now - last[0] < settings.CHAT["TYPING_MIN_INTERVAL_SECONDS"]:
        last[1] = True
        return Outcome([], {"ChatId": chat_id, "Relayed": False})
    if len(state) >= TYPING_STATE_MAX:
        state.clear()
    state[chat_id] = [now, True]
    await _typing_publish(conn, target, started=True)
    return Outcome([], {"ChatId": chat_id, "Relayed": True})


@handler("stop-typing")
async def stop_typing(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the user stopped typing (cleared the box, sent, left the chat). Relayed only
    when this connection's typing may still show, so repeats cost nothing."""
    chat_id = _str(data, "ChatId")
    target = await _typing_target(conn, chat_id)
    last = conn.extra.get("typing", {}).get(chat_id)
    if last is None or not last[1] or time.monotonic() - last[0] >= settings.CHAT["TYPING_TTL_SECONDS"]:
        return Outcome([], {"ChatId": chat_id, "Relayed": False})
    last[1] = False
    await _typing_publish(conn, target, started=False)
    return Outcome([], {"ChatId": chat_id, "Relayed": True})


def presence_payload(user_id: str, state: str, last_seen: str | None) -> dict[str, Any]:
    return {"UserId": user_id, "Online": state != presence.OFFLINE, "State": state, "LastSeen": last_seen}


@handler("presence-state")
async def presence_state(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the app goes to the foreground or the background on this device (the
    seeds' `active app` / `background app`). A new connection starts in the foreground."""
    state = data.get("State")
    if state not in presence.DEVICE_STATES:
        raise _invalid("State", 'State must be "foreground" or "background".')
    await presence.tracker.set_state(conn, state)
    return Outcome([], {"State": state})


@handler("fetch-presence")
async def fetch_presence(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called to learn whether users are online: those sharing a chat with the caller (and the
    caller); other ids are left out of the answer."""
    found = await call(presence.presence_list, viewer=conn.user, user_ids=data.get("UserIds"))
    users = [presence_payload(p.user_id, p.state, iso_ms(p.last_seen)) for p in found]
    return Outcome([("presence-list", {"Users": users})], {"Users": users})


def _render_unread(event: dict[str, Any]) -> list[Emit]:
    _kind, conv_id = _conv(event)
    payload = {
        "ChatId": conv_id,
        "Unread": event["unread"],
        "Total": event["unread_total"],
        "Seq": event["seq"],
    }
    return [Emit("unread", payload, to=ACTOR)]


def _render_delivered(event: dict[str, Any]) -> list[Emit]:
    _kind, conv_id = _conv(event)
    payload = {"ChatId": conv_id, "UserId": event["actor"], "Seq": event["seq"]}
    return [Emit("message-delivered", payload, skip=(ACTOR,), receipt=True)]


def _render_typing(event: dict[str, Any]) -> list[Emit]:
    _kind, conv_id = _conv(event)
    if event["type"] == "typing.stopped":
        return [Emit("stop-typing", {"ChatId": conv_id, "UserId": event["actor"]}, skip=(ACTOR,))]
    payload = {
        "ChatId": conv_id,
        "UserId": event["actor"],
        "UserName": event["actor_name"],
        "ExpiresIn": event["expires_in"],
    }
    return [Emit("typing", payload, skip=(ACTOR,))]


def _render_presence(event: dict[str, Any]) -> list[Emit]:
    return [Emit("presence", presence_payload(event["user_id"], event["state"], event["last_seen"]))]


RENDERERS["conversation.unread"] = _render_unread
RENDERERS["conversation.delivered"] = _render_delivered
RENDERERS["typing.started"] = _render_typing
RENDERERS["typing.stopped"] = _render_typing
RENDERERS["presence.changed"] = _render_presence


# --- edits, deletes, replies and reactions (compatible extensions) -------------------------
# docs/protocol.md §13. A reply is a send with `ReplyTo` (the quoted message's id); history
# messages carry `EditedAt`, `ReplyTo`, `Reactions` and `MyReactions` (see `message_extras`).


def reply_to_payload(reply: dict[str, Any] | None) -> dict[str, Any] | None:
    """The quote a reply carries (from messaging.events.reply_payload)."""
    if reply is None:
        return None
    return {
        "Id": reply["id"],
        "Seq": reply["seq"],
        "Sender": reply["sender_name"],
        "SenderId": reply["sender_id"],
        "Excerpt": reply["excerpt"],
        "Deleted": reply["deleted"],
        "Kind": reply.get("kind", "text"),
    }


# --- media messages (compatible extension) ---------------------------------------------------
# docs/protocol.md §15. A send names an upload in `AttachmentId` (and may give `Kind`); every
# message carries `Kind` and `Attachment`. An original client knows only `Content`: for a media
# message that is the caption and the file's URL, so it shows a link.


def attachment_wire(attachment: dict[str, Any] | None) -> dict[str, Any] | None:
    """The file of a media message (from messaging.events.attachment_payload)."""
    if attachment is None:
        return None
    return {
        "Id": attachment["id"],
        "Kind": attachment["kind"],
        "Url": attachment["url"],
        "Type": attachment["content_type"],
        "Size": attachment["size"],
        "Name": attachment["name"],
        "Width": attachment["width"],
        "Height": attachment["height"],
    }


def legacy_text(content: str, attachment: dict[str, Any] | None) -> str:
    """`Content` as an original client shows it: a media message's caption, then its URL on a
    line of its own (the URL alone when there is no caption)."""
    if attachment is None:
        return content
    return f"{content}\n{attachment['url']}" if content else attachment["url"]


def media_keys(kind: str, content: str, attachment: dict[str, Any] | None) -> dict[str, Any]:
    """The extension keys of every message: `Kind`, `Attachment` (null unless media), and for
    media messages `Caption` (the text without the URL)."""
    keys: dict[str, Any] = {"Kind": kind, "Attachment": attachment_wire(attachment)}
    if attachment is not None:
        keys["Caption"] = content
    return keys


def message_extras(message: Message, reactions: Sequence[msg_selectors.ReactionCount] = ()) -> dict[str, Any]:
    """`Content` as the original showed it (a media message's caption and URL), and the keys
    every history message carries besides the original's: kind and file, the revision of its
    latest change, when it was last edited, the message it quotes, and its reactions (emoji ->
    count, and those that are the viewer's)."""
    reply = msg_events.reply_payload(message.reply_to) if message.reply_to_id else None
    attachment = msg_events.attachment_payload(message.served_attachment)
    content = message.served_content
    return (
        {"Content": legacy_text(content, attachment)}
        | media_keys(message.kind, content, attachment)
        | {
            "Rev": message.rev,
            "EditedAt": iso_ms(message.edited_at),
            "ReplyTo": reply_to_payload(reply),
            "Reactions": {r.emoji: r.count for r in reactions},
            "MyReactions": [r.emoji for r in reactions if r.mine],
        }
    )


def _message_ref(data: dict[str, Any]) -> dict[str, Any]:
    """`ChatId` and `Id` of the message an event names (the service checks they belong)."""
    return {"conversation_id": _str(data, "ChatId"), "message_id": _str(data, "Id")}


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


def _render_message_edited(event: dict[str, Any]) -> list[Emit]:
    _kind, conv_id = _conv(event)
    message = event["message"]
    payload = {
        "ChatId": conv_id,
        "Id": message["id"],
        "Seq": message["seq"],
        "Rev": message.get("rev"),
        "Content": legacy_text(message["content"], message.get("attachment")),
        "EditedAt": message["edited_at"],
    }
    if message.get("attachment") is not None:
        payload["Caption"] = message["content"]
    # To the other members, and to the editor's other connections (not the one that asked).
    return [
        Emit("message-edited", payload, skip=(ACTOR,)),
        Emit("message-edited", payload, to=ACTOR, skip_origin=True),
    ]


def _render_reaction(event: dict[str, Any]) -> list[Emit]:
    _kind, conv_id = _conv(event)
    payload = {
        "ChatId": conv_id,
        "Id": event["message"]["id"],
        "Seq": event["message"]["seq"],
        "Rev": event["message"].get("rev"),
        "Emoji": event["emoji"],
        "UserId": event["actor"],
        "Count": event["count"],
        "Added": event["type"] == "reaction.added",
    }
    # To every member, the reacting user's other devices included: they show the count too.
    return [Emit("reaction", payload)]


RENDERERS["message.edited"] = _render_message_edited
RENDERERS["reaction.added"] = _render_reaction
RENDERERS["reaction.removed"] = _render_reaction


# --- resync (compatible extension) ----------------------------------------------------------
# docs/protocol.md §14. Every message event and history message carries `Rev`, the
# conversation revision of that change; a client that notices a hole, or reconnects, sends its
# positions and gets what changed in the shapes history uses.


def _sync_message(kind: str, message: Message, changes: msg_selectors.ConversationChanges) -> dict[str, Any]:
    reactions = changes.reactions.get(message.pk, ())
    if kind == GROUP:
        return group_message(message, changes.read_pointers, reactions)
    if kind == SELF:
        return self_message(message, reactions)
    return personal_message(message, changes.read_pointers, reactions)


def sync_payload(changes: list[msg_selectors.ConversationChanges]) -> dict[str, Any]:
    return {
        "Chats": {
            c.conversation_id: {
                "Kind": c.kind,
                "Messages": [_sync_message(c.kind, m, c) for m in c.messages],
                "Rev": c.last_rev,
                "Reload": c.reload,
                "More": c.more,
                "Left": c.left,
                "Gone": c.gone,
                # Read state, whole: the newest Seq, the caller's unread count, and the read
                # pointers the caller may see (user id -> Seq read up to).
                "Seq": c.last_seq,
                "Unread": c.unread,
                "ReadPointers": c.read_pointers,
            }
            for c in changes
        }
    }


@handler("sync")
async def sync(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called after a reconnect, or when a live event's `Rev` shows a hole: `Positions` maps
    chat ids to the last `Rev` the client has; `All` adds every other chat of the caller from
    0. The answer (ack, and `synced` for clients without acks) holds each chat's changes since."""
    include_all = data.get("All", False)
    if not isinstance(include_all, bool):
        raise _invalid("All", "All must be true or false.")
    changes = await call(
        msg_selectors.conversation_changes,
        user=conn.user,
        positions=data.get("Positions", {}),
        include_all=include_all,
    )
    payload = sync_payload(changes)
    return Outcome([("synced", payload)], payload)
