"""ExpressChat's outbound half: a domain event from the bus -> the ExpressChat events it
becomes, each with its audience (gateway.audience). Pure functions of the event."""

from collections.abc import Callable
from typing import Any

from gateway.audience import ACTOR, SUBJECT, Emit
from messaging.models import Message

from .state import EXTENSIONS
from .wire import (
    AUTH_FAILURE,
    CHAT_REQUEST_EVENTS,
    GROUP,
    PERSONAL,
    auth_failure_payload,
    chat_request_payload,
    legacy_text,
    media_keys,
    presence_payload,
    reply_to_payload,
)


def _conv(event: dict[str, Any]) -> tuple[str | None, str | None]:
    conversation = event.get("conversation") or {}
    return conversation.get("kind"), conversation.get("id")


SYSTEM = Message.Kind.SYSTEM  # an enum member: looked up once, not per message


def _render_message(event: dict[str, Any]) -> list[Emit]:
    kind, conv_id = _conv(event)
    message = event["message"]
    if message["kind"] == SYSTEM:
        return _render_system_message(kind, conv_id, message)
    content, attachment = message["content"], message.get("attachment")
    # One dict, built in the wire's key order (a direct message renders twice per message: the
    # sender's copy asked about, the receiver's delivered; merging partial dicts cost more).
    payload = {
        "ChatId": conv_id,
        "Content": legacy_text(content, attachment),
        "Sender": message["sender_name"],
        "Id": message["id"],
        "Seq": message["seq"],
        # `.get`: during a rolling deploy an older process may publish events without it.
        "Rev": message.get("rev"),
        "SenderId": message["sender_id"],
        "Timestamp": message["created_at"],
    }
    if message.get("reply_to"):
        payload["ReplyTo"] = reply_to_payload(message["reply_to"])
    # `.get`: events of an older process have neither key.
    payload.update(media_keys(message.get("kind", "text"), content, attachment))
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
    return [Emit("system-message", payload, requires=EXTENSIONS)]


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


def _render_chat_request(event: dict[str, Any]) -> list[Emit]:
    """Extension (§17): both users, every connection (the actor's other devices too; the one
    that asked has its ack as well)."""
    name = CHAT_REQUEST_EVENTS[event["type"].rpartition(".")[2]]
    return [Emit(name, chat_request_payload(event["request"], event["conversation"]["id"]))]


def _render_member_changed(event: dict[str, Any]) -> list[Emit]:
    """Extension (§17): a user left or came back to a chat that started as a request of its
    own; both users, every connection."""
    name = "chat-member-left" if event["type"] == "conversation.member_left" else "chat-member-rejoined"
    payload = {
        "ChatId": event["conversation"]["id"],
        "UserId": event["user"]["id"],
        "Name": event["user"]["name"],
        "Seq": event["seq"],
    }
    return [Emit(name, payload)]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[Emit]]] = {
    "conversation.member_left": _render_member_changed,
    "conversation.member_rejoined": _render_member_changed,
    "chat_request.created": _render_chat_request,
    "chat_request.accepted": _render_chat_request,
    "chat_request.declined": _render_chat_request,
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
    "message.hidden": _render_message_removed,
    "message.deleted": _render_message_removed,
    "conversation.unread": _render_unread,
    "conversation.delivered": _render_delivered,
    "typing.started": _render_typing,
    "typing.stopped": _render_typing,
    "presence.changed": _render_presence,
    "message.edited": _render_message_edited,
    "reaction.added": _render_reaction,
    "reaction.removed": _render_reaction,
}


def render(event: dict[str, Any]) -> list[Emit]:
    """The ExpressChat events a domain event becomes, each with its audience."""
    renderer = RENDERERS.get(event.get("type"))
    return renderer(event) if renderer else []
