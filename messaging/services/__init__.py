"""Writes of the messaging domain. Every transport ends here; events leave only on commit.

Split by concern; callers import from this package and need not know the modules:
- `conversations`: notes-to-self and direct conversations, the chat partner check, blocking,
  chat requests, leaving and rejoining a request's own conversation;
- `sending`: `message_send` / `message_send_many` (the one write path for messages), the
  batch's steps (memberships, replies, retries, uploads, storage), system messages;
- `validation`: what a message may contain (shared by sending and edits);
- `storage`: the conversation's sequence and revision allocators, read pointer moves;
- `receipts`: read and delivery pointers;
- `changes`: edits, deletes and reactions;
- `moderation`: `message_moderate`;
- `audience`: who receives a conversation's events (the one place that decides).
"""

from .changes import REACTION_EMOJI_MAX, message_delete, message_edit, reaction_add, reaction_remove
from .conversations import (
    chat_partner_get,
    chat_request_accept,
    chat_request_create,
    chat_request_decline,
    conversation_block,
    conversation_leave,
    conversation_rejoin,
    direct_conversation_get_or_create,
    self_conversation_ensure,
)
from .moderation import MODERATE_DELETE, MODERATE_HIDE, MODERATE_PERMISSION, message_moderate
from .receipts import conversation_mark_delivered, conversation_mark_read
from .sending import (
    SendRequest,
    SendResult,
    Stepping,
    drive,
    message_send,
    message_send_many,
    self_message_send,
    send_steps,
    system_message_post,
)
from .storage import Call, Publish, SendQuery, Steps, send_statements_prepared
from .validation import CLIENT_MESSAGE_ID_MAX, SENDABLE_KINDS

__all__ = [
    "CLIENT_MESSAGE_ID_MAX",
    "Call",
    "Publish",
    "SendQuery",
    "Steps",
    "MODERATE_DELETE",
    "MODERATE_HIDE",
    "MODERATE_PERMISSION",
    "REACTION_EMOJI_MAX",
    "SENDABLE_KINDS",
    "SendRequest",
    "SendResult",
    "Stepping",
    "drive",
    "send_statements_prepared",
    "send_steps",
    "chat_partner_get",
    "chat_request_accept",
    "chat_request_create",
    "chat_request_decline",
    "conversation_block",
    "conversation_leave",
    "conversation_rejoin",
    "conversation_mark_delivered",
    "conversation_mark_read",
    "direct_conversation_get_or_create",
    "message_delete",
    "message_edit",
    "message_moderate",
    "message_send",
    "message_send_many",
    "reaction_add",
    "reaction_remove",
    "self_conversation_ensure",
    "self_message_send",
    "system_message_post",
]
