"""Domain events of the messaging app: pure functions returning JSON-ready dicts.

Events carry facts, not wire shapes: every protocol module renders them its own way. Each event
has `type`, `actor` (the user who caused it, or None) and the conversation it concerns. Events
about a message carry its `rev` (the conversation revision of this change), so a receiver can
tell that it missed one (docs/protocol.md §14).
"""

from typing import Any

from accounts.models import User
from chatproject.core.timefmt import iso_ms

from .media import attachment_url
from .models import Attachment, ChatRequest, Conversation, Message


def attachment_payload(attachment: Attachment | None) -> dict[str, Any] | None:
    """What members learn of a media message's file: where it is and what it is."""
    if attachment is None:
        return None
    return {
        "id": attachment.public_id,
        "kind": attachment.kind,
        "url": attachment_url(attachment),
        "content_type": attachment.content_type,
        "size": attachment.size,
        "name": attachment.name,
        "width": attachment.width,
        "height": attachment.height,
    }


def message_payload(message: Message, *, sender: User | None) -> dict[str, Any]:
    return {
        "id": message.public_id,
        "seq": message.seq,
        "rev": message.rev,
        "kind": message.kind,
        "content": message.content,
        "sender_id": sender.public_id if sender else None,
        "sender_name": sender.display_name if sender else None,
        "client_message_id": message.client_message_id,
        "created_at": iso_ms(message.created_at),
        # `reply_to_id` first: a message that quotes nothing costs no query here.
        "reply_to": reply_payload(message.reply_to) if message.reply_to_id else None,
        # Media messages: the file (`content` is then its caption, possibly empty).
        "attachment": attachment_payload(message.served_attachment),
    }


def _conversation(conversation: Conversation) -> dict[str, Any]:
    return {"id": conversation.public_id, "kind": conversation.kind}


def _with_origin(event: dict[str, Any], origin: str | None) -> dict[str, Any]:
    """`origin`: an opaque tag of the client connection that asked for the change, when a
    transport gave one, so that transports can tell the actor's other connections without
    echoing it to the one that asked (which has its answer)."""
    if origin is not None:
        event["origin"] = origin
    return event


def message_created(
    *, conversation: Conversation, message: Message, sender: User | None, origin: str | None = None
) -> dict[str, Any]:
    event = {
        "type": "message.created",
        "actor": sender.public_id if sender else None,
        "conversation": _conversation(conversation),
        "message": message_payload(message, sender=sender),
    }
    return _with_origin(event, origin)


def conversation_created(*, conversation: Conversation, creator: User, members: list[User]) -> dict[str, Any]:
    return {
        "type": "conversation.created",
        "actor": creator.public_id,
        "actor_name": creator.display_name,
        "conversation": _conversation(conversation),
        "members": [{"id": m.public_id, "name": m.display_name} for m in members],
    }


def conversation_read(*, conversation: Conversation, reader: User, seq: int) -> dict[str, Any]:
    return {
        "type": "conversation.read",
        "actor": reader.public_id,
        "conversation": _conversation(conversation),
        "seq": seq,
    }


def _message_removed(kind: str, *, conversation: Conversation, message: Message) -> dict[str, Any]:
    # No actor: members learn that a moderator acted, never which staff account did. The
    # record of who did it is the ModerationAction, for the admin only.
    return {
        "type": kind,
        "actor": None,
        "conversation": _conversation(conversation),
        "message": {"id": message.public_id, "seq": message.seq, "rev": message.rev},
    }


def message_hidden(*, conversation: Conversation, message: Message) -> dict[str, Any]:
    """A moderator hid a message: clients drop its text (history serves it empty from now on)."""
    return _message_removed("message.hidden", conversation=conversation, message=message)


def message_deleted(*, conversation: Conversation, message: Message) -> dict[str, Any]:
    """A moderator deleted a message: its text is gone for good; the seq stays (no gap)."""
    return _message_removed("message.deleted", conversation=conversation, message=message)


# --- receipts, unread counts and typing -----------------------------------------------------


def conversation_unread(
    *, conversation: Conversation, reader: User, seq: int, unread: int, unread_total: int
) -> dict[str, Any]:
    """The reader's own counts after a mark-read: for the reader's devices only, so that reading
    on one device clears the count on all of them."""
    return {
        "type": "conversation.unread",
        "actor": reader.public_id,
        "conversation": _conversation(conversation),
        "seq": seq,
        "unread": unread,
        "unread_total": unread_total,
    }


def conversation_delivered(*, conversation: Conversation, recipient: User, seq: int) -> dict[str, Any]:
    """One of the recipient's devices received the conversation's messages up to `seq`."""
    return {
        "type": "conversation.delivered",
        "actor": recipient.public_id,
        "conversation": _conversation(conversation),
        "seq": seq,
    }


def typing(*, conversation_id: str, kind: str, user: User, started: bool, expires_in: int) -> dict[str, Any]:
    """A member started (or stopped) typing. Never stored: `expires_in` seconds after a start
    without a stop, receivers drop the indicator by themselves."""
    return {
        "type": "typing.started" if started else "typing.stopped",
        "actor": user.public_id,
        "actor_name": user.display_name,
        "conversation": {"id": conversation_id, "kind": kind},
        "expires_in": expires_in,
    }


def room_presence(
    *, conversation_id: str, user: User, entered: bool, online: list[str], name: str
) -> dict[str, Any]:
    """A member opened (`entered`) or closed a group conversation on one connection, for
    protocols whose clients join rooms (seed 003's `join`/`leave`). Never stored. `online`: the
    members connected when it happened, as the member's connection saw them; `name`: what the
    protocol calls the room."""
    return {
        "type": "room.entered" if entered else "room.left",
        "actor": user.public_id,
        "actor_name": user.display_name,
        "conversation": {"id": conversation_id, "kind": Conversation.Kind.GROUP},
        "name": name,
        "online": online,
    }


# --- edits, deletes, replies and reactions --------------------------------------------------

# A reply carries this much of the quoted text, enough for the quote line a client shows.
REPLY_EXCERPT_LENGTH = 100


def reply_payload(target: Message | None) -> dict[str, Any] | None:
    """What a reply says about the message it quotes. The excerpt is what members are served:
    empty once the target was deleted or hidden (the quote shows the tombstone)."""
    if target is None:
        return None
    sender = target.sender
    return {
        "id": target.public_id,
        "seq": target.seq,
        "kind": target.kind,
        "sender_id": sender.public_id if sender else None,
        "sender_name": sender.display_name if sender else None,
        "excerpt": target.served_content[:REPLY_EXCERPT_LENGTH],
        "deleted": target.deleted_at is not None or target.hidden_at is not None,
    }


def message_edited(
    *, conversation: Conversation, message: Message, editor: User, origin: str | None = None
) -> dict[str, Any]:
    """The sender changed a message's text (a media message's caption); the previous text went
    to its edit history. Media messages carry their attachment again, so a protocol that shows
    files as links can render the whole new text."""
    event = {
        "type": "message.edited",
        "actor": editor.public_id,
        "conversation": _conversation(conversation),
        "message": {
            "id": message.public_id,
            "seq": message.seq,
            "rev": message.rev,
            "kind": message.kind,
            "content": message.content,
            "edited_at": iso_ms(message.edited_at),
            "attachment": attachment_payload(message.served_attachment),
        },
    }
    return _with_origin(event, origin)


def reaction_changed(
    *, conversation: Conversation, message: Message, user: User, emoji: str, count: int, added: bool
) -> dict[str, Any]:
    """A member added or removed an emoji on a message; `count` is how many members have that
    emoji on it now, so receivers need no state to show it."""
    return {
        "type": "reaction.added" if added else "reaction.removed",
        "actor": user.public_id,
        "conversation": _conversation(conversation),
        "message": {"id": message.public_id, "seq": message.seq, "rev": message.rev},
        "emoji": emoji,
        "count": count,
    }


def chat_request_payload(request: ChatRequest) -> dict[str, Any]:
    """What both users learn of a chat request (`requester` and `recipient` loaded)."""
    return {
        "id": request.public_id,
        "state": request.state,
        "requester": {"id": request.requester.public_id, "name": request.requester.display_name},
        "recipient": {"id": request.recipient.public_id, "name": request.recipient.display_name},
        "created_at": iso_ms(request.created_at),
        "decided_at": iso_ms(request.decided_at) if request.decided_at else None,
    }


def chat_request_changed(*, request: ChatRequest, actor: User) -> dict[str, Any]:
    """A chat request was made (`chat_request.created`), accepted or declined, for both users:
    `subject` is the other one (the recipient of a new request, the requester of a decision)."""
    subject = request.recipient if actor.pk == request.requester_id else request.requester
    state = "created" if request.state == ChatRequest.State.PENDING else request.state
    return {
        "type": f"chat_request.{state}",
        "actor": actor.public_id,
        "subject": subject.public_id,
        "conversation": _conversation(request.conversation),
        "request": chat_request_payload(request),
    }


def conversation_member_changed(*, conversation: Conversation, user: User, left: bool) -> dict[str, Any]:
    """A user left (`conversation.member_left`) or came back to (`conversation.member_rejoined`)
    a conversation that started as a chat request of its own, for both users. `seq`: the last
    message the user may read while away (left), or the conversation's last one (rejoined)."""
    return {
        "type": "conversation.member_left" if left else "conversation.member_rejoined",
        "actor": user.public_id,
        "conversation": _conversation(conversation),
        "user": {"id": user.public_id, "name": user.display_name},
        "seq": conversation.last_seq,
    }
