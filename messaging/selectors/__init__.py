"""Reads of the messaging domain. Every read of one conversation goes through
`conversation_get_for_member`, so a non-member learns nothing, not even that it exists.

Split by concern; callers import from this package and need not know the modules:
- `access`: membership and message access checks, conversation keys, direct and self lookups,
  typing targets and co-members (presence audiences);
- `lists`: conversation summaries, the handshake snapshot, conversation lists, unread counts;
- `history`: history pages, read pointers and seen-by, reactions, edits, served attachments;
- `pages`: the hand-written statements of a history page, in two round trips;
- `sync`: `conversation_changes`, what a returning client missed;
- `requests`: chat requests as their requester and recipient see them;
- `since`: `messages_since`, what a connection newly routed to a conversation went without.
"""

from .access import (
    TypingTarget,
    co_member_ids,
    co_member_ids_many,
    co_members_among,
    conversation_get_for_member,
    conversation_member_ids,
    conversation_typing_target,
    direct_conversation_find,
    direct_key,
    direct_partner,
    membership_get,
    message_get_for_member,
    self_conversation_get,
    self_key,
)
from .history import (
    REACTIONS_SHOWN,
    SEEN_BY_LIST_LIMIT,
    ConversationPage,
    MessagePage,
    ReactionCount,
    Reader,
    SeenBy,
    attachment_for_serving,
    conversation_page,
    message_edits,
    message_history,
    message_page,
    message_reactions,
    message_seen_by,
    message_seqs,
    reaction_count,
    reactions_of_user,
    read_pointers,
    read_pointers_visible,
    user_receipts_enabled,
)
from .lists import (
    ConversationSnapshot,
    ConversationSummary,
    conversation_ids_for_user,
    conversation_list_for_user,
    conversation_snapshot_for_user,
    conversation_summary_get,
    snapshot_from,
    snapshot_partner_statements,
    snapshot_rows,
    snapshot_statement,
    unread_total,
)
from .requests import (
    ChatRequestView,
    chat_request_get,
    chat_request_of_conversation,
    chat_requests_for_user,
)
from .since import MessagesSince, messages_since
from .sync import ConversationChanges, conversation_changes

__all__ = [
    "ChatRequestView",
    "chat_request_get",
    "chat_request_of_conversation",
    "chat_requests_for_user",
    "REACTIONS_SHOWN",
    "SEEN_BY_LIST_LIMIT",
    "ConversationChanges",
    "ConversationPage",
    "ConversationSnapshot",
    "ConversationSummary",
    "MessagePage",
    "MessagesSince",
    "ReactionCount",
    "Reader",
    "SeenBy",
    "TypingTarget",
    "attachment_for_serving",
    "co_member_ids",
    "co_member_ids_many",
    "co_members_among",
    "conversation_changes",
    "conversation_get_for_member",
    "conversation_ids_for_user",
    "conversation_list_for_user",
    "conversation_member_ids",
    "conversation_page",
    "conversation_snapshot_for_user",
    "conversation_summary_get",
    "conversation_typing_target",
    "direct_conversation_find",
    "direct_key",
    "direct_partner",
    "membership_get",
    "message_edits",
    "message_get_for_member",
    "message_history",
    "message_page",
    "message_reactions",
    "message_seen_by",
    "message_seqs",
    "messages_since",
    "reaction_count",
    "reactions_of_user",
    "read_pointers",
    "read_pointers_visible",
    "self_conversation_get",
    "self_key",
    "snapshot_from",
    "snapshot_partner_statements",
    "snapshot_rows",
    "snapshot_statement",
    "unread_total",
    "user_receipts_enabled",
]
