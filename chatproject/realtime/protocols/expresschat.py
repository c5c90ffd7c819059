"""The ExpressChat wire protocol (namespace "/" and the /ws/ consumer).

Two halves, both thin:
- inbound: one handler per client event: validate the payload's shape, call one service or
  selector with the connection's user, return what goes back to the caller;
- outbound: `render(event)`: a domain event from the bus -> the ExpressChat events it becomes,
  each with its audience. Pure functions of their input.

Names, keys, id and timestamp formats follow the original server exactly. Compatible
extensions (ignored by the original client): an ack on every event
(`{"ok": true, "data": ...}` / `{"ok": false, "error": {...}}`), `ClientMessageId` on sends,
`Id`/`Seq`/`Timestamp`/`SenderId` on delivered messages, `Before`/`Limit` on fetches.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from accounts import services as account_services
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.timefmt import iso_ms
from messaging import selectors as msg_selectors
from messaging import services as msg_services
from messaging.models import Conversation, Message

from ..connection import Connection
from ..sync import call

PERSONAL = Conversation.Kind.DIRECT
SELF = Conversation.Kind.SELF
GROUP = Conversation.Kind.GROUP

AUTH_FAILURE = "auth-failure"
AUTH_FAILURE_REASON = "Authentication failed"

# Audiences of an outbound event, relative to the domain event's actor.
OTHERS = "others"  # every recipient except the actor's connections
ACTOR = "actor"  # only the actor's connections
ALL = "all"


@dataclass(frozen=True)
class Emit:
    name: str
    payload: Any
    audience: str = ALL


@dataclass
class Outcome:
    """What a handler sends back: events to the calling connection, and the ack's data."""

    emits: list[tuple[str, Any]] = field(default_factory=list)
    data: Any = None


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
            }
            for s in summaries
        ]
    }


def _read_status(message: Message, pointers: dict[str, int]) -> dict[str, str]:
    return {uid: ("Read" if message.seq <= seq else "Unread") for uid, seq in pointers.items()}


def personal_message(message: Message, pointers: dict[str, int]) -> dict[str, Any]:
    return {
        "Sender": message.sender.public_id if message.sender else None,
        "Content": message.content,
        "ReadStatus": _read_status(message, pointers),
        "Timestamp": iso_ms(message.created_at),
        "_id": message.public_id,
        "Seq": message.seq,
    }


def self_message(message: Message) -> dict[str, Any]:
    return {
        "Content": message.content,
        "Timestamp": iso_ms(message.created_at),
        "_id": message.public_id,
        "Seq": message.seq,
    }


def sent_ack(message: Message, created: bool) -> dict[str, Any]:
    return {
        "Id": message.public_id,
        "Seq": message.seq,
        "ChatId": message.conversation.public_id,
        "Timestamp": iso_ms(message.created_at),
        "ClientMessageId": message.client_message_id,
        "Duplicate": not created,
    }


def error_payload(error: ApplicationError, event: str) -> dict[str, Any]:
    return {"code": str(error.code), "message": error.message, "extra": error.extra, "event": event}


def auth_failure_payload(code: str) -> dict[str, str]:
    return {"reason": AUTH_FAILURE_REASON, "code": code}


# --- connection start ---------------------------------------------------------------------


async def on_connect(conn: Connection) -> list[tuple[str, Any]]:
    """The events a freshly authenticated connection receives, in the original order."""
    summaries = await call(msg_selectors.conversation_list_for_user, user=conn.user, kinds=(PERSONAL, GROUP))
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
    message, created = await call(
        msg_services.message_send,
        user=conn.user,
        conversation_id=_str(data, "ChatId"),
        content=data.get("Content"),
        client_message_id=data.get("ClientMessageId"),
        kind=PERSONAL,
    )
    return Outcome([], sent_ack(message, created))


@handler("read-personal-message")
async def read_personal_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client has read a direct chat (up to `Seq`, default everything)."""
    conversation, pointer = await call(
        msg_services.conversation_mark_read,
        user=conn.user,
        conversation_id=_str(data, "ChatId"),
        up_to_seq=_int(data, "Seq"),
        kind=PERSONAL,
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
        "Messages": [personal_message(m, page.read_pointers) for m in page.messages],
        "UserId": conn.user_id,
        "User": conn.user.display_name,
        "Partner": page.partner.display_name if page.partner else None,
        "ChatId": page.conversation.public_id,
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
        "Messages": [self_message(m) for m in page.messages],
        "Name": conn.user.display_name,
        "ChatId": conversation.public_id,
    }
    return Outcome([("self-chat", payload)], None)


@handler("send-self-message")
async def send_self_message(conn: Connection, data: dict[str, Any]) -> Outcome:
    """Called when the client writes a note to self. Nobody else is told."""
    message, created = await call(
        msg_services.self_message_send,
        user=conn.user,
        content=data.get("Content"),
        client_message_id=data.get("ClientMessageId"),
    )
    return Outcome([], sent_ack(message, created))


# --- outbound rendering (pure) ------------------------------------------------------------


def _delivered(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": message["id"],
        "Seq": message["seq"],
        "SenderId": message["sender_id"],
        "Timestamp": message["created_at"],
    }


def render(event: dict[str, Any]) -> list[Emit]:
    """The ExpressChat events a domain event becomes, each with its audience."""
    kind = event.get("type")
    conversation = event.get("conversation") or {}
    conv_kind, conv_id = conversation.get("kind"), conversation.get("id")
    if kind == "message.created":
        message = event["message"]
        if conv_kind == PERSONAL:
            payload = {"ChatId": conv_id, "Content": message["content"], "Sender": message["sender_name"]}
            return [Emit("receive-personal-message", payload | _delivered(message), OTHERS)]
        if conv_kind == GROUP:
            payload = {"ChatId": conv_id, "Sender": message["sender_name"], "Content": message["content"]}
            return [Emit("receive-group-message", payload | _delivered(message), OTHERS)]
        return []
    if kind == "conversation.created" and conv_kind == PERSONAL:
        return [
            Emit("create-personal-chat-partner", {"ChatId": conv_id, "Partner": event["actor_name"]}, OTHERS)
        ]
    if kind == "conversation.read":
        if conv_kind == PERSONAL:
            return [
                Emit(
                    "read-personal-msg-ack",
                    {"ChatId": conv_id, "Reader": event["actor"], "Seq": event["seq"]},
                    OTHERS,
                )
            ]
        if conv_kind == GROUP:
            return [
                Emit(
                    "read-grp-msg-ack",
                    {"Reader": event["actor"], "ChatId": conv_id, "Seq": event["seq"]},
                    OTHERS,
                )
            ]
        return []
    if kind == "session.revoked":
        return [Emit(AUTH_FAILURE, auth_failure_payload(event.get("reason") or "revoked"), ALL)]
    return []
