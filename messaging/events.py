"""Domain events of the messaging app: pure functions returning JSON-ready dicts.

Events carry facts, not wire shapes: every protocol module renders them its own way. Each event
has `type`, `actor` (the user who caused it, or None) and the conversation it concerns.
"""

from typing import Any

from accounts.models import User
from chatproject.core.timefmt import iso_ms

from .models import Conversation, Message


def message_payload(message: Message, *, sender: User | None) -> dict[str, Any]:
    return {
        "id": message.public_id,
        "seq": message.seq,
        "kind": message.kind,
        "content": message.content,
        "sender_id": sender.public_id if sender else None,
        "sender_name": sender.display_name if sender else None,
        "client_message_id": message.client_message_id,
        "created_at": iso_ms(message.created_at),
    }


def _conversation(conversation: Conversation) -> dict[str, Any]:
    return {"id": conversation.public_id, "kind": conversation.kind}


def message_created(*, conversation: Conversation, message: Message, sender: User | None) -> dict[str, Any]:
    return {
        "type": "message.created",
        "actor": sender.public_id if sender else None,
        "conversation": _conversation(conversation),
        "message": message_payload(message, sender=sender),
    }


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
