"""`messages_since`: the messages of a conversation after a point, as a member may be shown
them live. The realtime layer reads it when a connection's routing to a conversation is added
(a group created, a member added): whatever the conversation received between the membership's
point and the moment the process's bus subscription was in place went past that connection."""

from dataclasses import dataclass

from django.conf import settings

from accounts.models import User

from ..models import Conversation, Message
from .history import message_history


@dataclass(frozen=True)
class MessagesSince:
    """`messages`: the messages after the point the caller may be shown, oldest first (a
    message hidden or deleted meanwhile is left out: its text is not served). `through`: the
    seq of the last message this read covered, shown or left out (the point itself when there
    was none); a live copy of a message up to it is one the caller has had, or must not have.
    `more`: there may be messages after `through` (read again from it)."""

    conversation: Conversation
    messages: list[Message]
    through: int
    more: bool


def messages_since(
    *, user: User, conversation_id: object, after: int, limit: int | None = None
) -> MessagesSince:
    """The messages of a conversation with a seq above `after`, the caller's to read: a current
    member's, or up to the moment they left (`history.message_history`'s rules, which raise
    not_found for anyone else). At most `limit` (CHAT HISTORY_MAX_PAGE_SIZE) in one read."""
    page = settings.CHAT["HISTORY_MAX_PAGE_SIZE"] if limit is None else limit
    conversation, found = message_history(user=user, conversation_id=conversation_id, after=after, limit=page)
    shown = [m for m in found if m.hidden_at is None and m.deleted_at is None]
    through = found[-1].seq if found else after
    return MessagesSince(conversation, shown, through, more=len(found) == page)
