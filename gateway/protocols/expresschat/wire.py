"""ExpressChat wire shapes: pure functions from core objects to the original's JSON.

Names, keys, id and timestamp formats follow the original server exactly; the keys it did not
have are compatible extensions (docs/protocol.md), ignored by the original client.
"""

from collections.abc import Sequence
from typing import Any

from chatproject.core.errors import ApplicationError
from chatproject.core.timefmt import iso_ms
from gateway import presence
from gateway.connection import Connection
from groups import selectors as group_selectors
from messaging import events as msg_events
from messaging import selectors as msg_selectors
from messaging.models import Conversation, Message

PERSONAL = Conversation.Kind.DIRECT
SELF = Conversation.Kind.SELF
GROUP = Conversation.Kind.GROUP
AUTH_FAILURE = "auth-failure"
AUTH_FAILURE_REASON = "Authentication failed"


def _read_status(message: Message, pointers: dict[str, int]) -> dict[str, str]:
    return {uid: ("Read" if message.seq <= seq else "Unread") for uid, seq in pointers.items()}


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


def group_chat_payload(
    page: group_selectors.GroupPage, viewer_id: str, *, system: bool = True
) -> dict[str, Any]:
    """`system` False: without the group's system messages (clients that did not opt in to the
    extensions would show them as if the actor had typed them)."""
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
            group_message(m, page.read_pointers, page.reactions.get(m.pk, ()))
            for m in page.messages
            if system or m.kind != Message.Kind.SYSTEM
        ],
        "GroupId": page.conversation.public_id,
        # Read before the messages: a client may take it as its resync position (§14.2).
        "Rev": page.conversation.last_rev,
    }


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


def greeting(conn: Connection, summaries: list[msg_selectors.ConversationSummary]) -> list[tuple[str, Any]]:
    """The events a freshly authenticated connection receives, in the original order, from the
    user's direct and group conversations (read by the hub with the session check)."""
    personal = [s for s in summaries if s.kind == PERSONAL]
    groups = [s for s in summaries if s.kind == GROUP]
    return [
        ("user-id", user_id_payload(conn)),
        ("personal-chat-list", personal_chat_list(personal)),
        ("group-chat-list", group_chat_list(groups)),
    ]


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


def presence_payload(user_id: str, state: str, last_seen: str | None) -> dict[str, Any]:
    return {"UserId": user_id, "Online": state != presence.OFFLINE, "State": state, "LastSeen": last_seen}


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


CHAT_REQUEST_EVENTS = {
    "created": "chat-request",
    "accepted": "chat-request-accepted",
    "declined": "chat-request-declined",
}


def chat_request_payload(request: dict[str, Any], conversation_id: str) -> dict[str, Any]:
    """A chat request (`messaging.events.chat_request_payload`) on this wire (docs/protocol.md §17)."""
    return {
        "RequestId": request["id"],
        "ChatId": conversation_id,
        "State": request["state"],
        "Requester": {"Id": request["requester"]["id"], "Name": request["requester"]["name"]},
        "Recipient": {"Id": request["recipient"]["id"], "Name": request["recipient"]["name"]},
        "CreatedAt": request["created_at"],
        "DecidedAt": request["decided_at"],
    }
