"""Resync: `conversation_changes`, everything that changed in a client's conversations since
the revisions it has (docs/protocol.md §14), and its helpers."""

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from ..models import Conversation, Membership, Message
from .history import ReactionCount, message_reactions, user_receipts_enabled


@dataclass(frozen=True)
class ConversationChanges:
    """What changed in one conversation since a client's position (a revision).

    `messages`: every message whose latest change has a revision above the position, in
    revision order, in its current state (tombstones, edits, reactions as history serves
    them). `last_rev`: the position to send next time. At most one of the flags is set:
    `reload` (too many changes, or a position this conversation never had: refetch history),
    `more` (this answer had no room left: ask again with the same position), `gone` (unknown,
    deleted, or never yours: nothing to show). `left` may come with messages or `reload`.
    """

    conversation_id: str
    kind: str | None
    last_rev: int
    messages: list[Message] = field(default_factory=list)
    reactions: dict[int, list[ReactionCount]] = field(default_factory=dict)
    read_pointers: dict[str, int] = field(default_factory=dict)
    reload: bool = False
    more: bool = False
    left: bool = False
    gone: bool = False
    last_seq: int = 0  # the newest message's seq
    unread: int = 0  # the caller's unread count (0 once left)


def _positions(value: object) -> dict[str, int]:
    """A client's positions: conversation id -> the last revision it has (a non-negative integer),
    at most CHAT CONVERSATION_LIST_LIMIT of them."""
    maximum = settings.CHAT["CONVERSATION_LIST_LIMIT"]
    if not isinstance(value, dict) or len(value) > maximum:
        raise ApplicationError(
            ErrorCode.INVALID,
            f"positions must map at most {maximum} conversation ids to revisions.",
            {"field": "positions", "max_conversations": maximum},
        )
    for key, rev in value.items():
        if not isinstance(key, str) or isinstance(rev, bool) or not isinstance(rev, int) or rev < 0:
            raise ApplicationError(
                ErrorCode.INVALID,
                "positions must map conversation ids to non-negative integers.",
                {"field": "positions"},
            )
    return value


def conversation_changes(
    *, user: User, positions: object, include_all: bool = False, limit: int | None = None
) -> list[ConversationChanges]:
    """Everything that changed in the given conversations since the caller's positions, for a
    client coming back after a disconnect of any length (docs/protocol.md §14).

    `include_all` adds every current conversation of the caller not listed, from position 0
    (the newest first, up to CHAT CONVERSATION_LIST_LIMIT in all). Revisions are gapless per
    conversation, so `last_rev - position` bounds the number of changed messages without
    counting them: a conversation over `limit` (CHAT SYNC_MAX_CHANGES) is answered with
    `reload`, and one answer carries at most `limit` changes in all (the rest: `more`).

    An id that is malformed, unknown, deleted or of a conversation the caller was never in is
    `gone`, all alike. A conversation the caller left shows its changes up to the moment of
    leaving. At most five queries, whatever the number of conversations.
    """
    positions = _positions(positions)
    limit = settings.CHAT["SYNC_MAX_CHANGES"] if limit is None else limit
    ids = [key for key in positions if is_public_id(key)]
    listed = {
        m.conversation.public_id: m
        for m in Membership.objects.select_related("conversation").filter(
            user=user, conversation__public_id__in=ids
        )
    }
    wanted = [(key, positions[key], listed.get(key)) for key in positions]
    if include_all:
        room = settings.CHAT["CONVERSATION_LIST_LIMIT"] - len(positions)
        others = (
            Membership.objects.select_related("conversation")
            .filter(user=user, left_at__isnull=True)
            .exclude(conversation__public_id__in=list(positions))
            .order_by("-conversation__last_message_at", "-conversation_id")[: max(room, 0)]
        )
        wanted += [(m.conversation.public_id, 0, m) for m in others]
    results: list[ConversationChanges] = []
    fetch: dict[int, ConversationChanges] = {}
    receipts: dict[int, ConversationChanges] = {}
    clauses = Q(pk__in=[])
    budget = limit
    for key, position, membership in wanted:
        if membership is None:
            results.append(ConversationChanges(key, None, 0, gone=True))
            continue
        conversation = membership.conversation
        left = membership.left_at is not None
        gap = conversation.last_rev - position
        # Read state is not revisioned: it comes whole with every answer (a pointer per member).
        state = {
            "left": left,
            "last_seq": membership.left_seq if left else conversation.last_seq,
            "unread": 0 if left else max(conversation.last_seq - membership.last_read_seq, 0),
        }
        entry = ConversationChanges(key, conversation.kind, conversation.last_rev, **state)
        if gap < 0 or gap > limit:
            # A position above the conversation's own (a restored database, a client bug) is
            # as unusable as a stale one: start again from history.
            entry = ConversationChanges(key, conversation.kind, conversation.last_rev, reload=True, **state)
        elif gap > budget:
            entry = ConversationChanges(key, conversation.kind, position, more=True, **state)
        elif gap > 0:
            budget -= gap
            # `rev <= last_rev`: a change committed after the membership row was read belongs
            # to the next sync, not to this one (it would come twice).
            clause = Q(conversation_id=conversation.pk, rev__gt=position, rev__lte=conversation.last_rev)
            if left:
                clause &= Q(seq__lte=membership.left_seq)
            clauses |= clause
            fetch[conversation.pk] = entry
        # Pointers of every direct chat named (two rows each); a group's only with its changes
        # (a sync may name 500 groups of 1,000 members).
        if not left and conversation.kind == Conversation.Kind.DIRECT:
            receipts[conversation.pk] = entry
        results.append(entry)
    if fetch:
        messages = list(
            Message.objects.filter(clauses)
            .select_related("sender", "reply_to", "reply_to__sender", "attachment")
            .order_by("conversation_id", "rev")
        )
        reactions = message_reactions(messages=messages, viewer=user)
        for message in messages:
            entry = fetch[message.conversation_id]
            entry.messages.append(message)
            if message.pk in reactions:
                entry.reactions[message.pk] = reactions[message.pk]
    # Changed messages show their ReadStatus from these; the client updates older ones too.
    # (A conversation the caller left keeps the pointers its changed messages need.)
    with_receipts = receipts | {pk: e for pk, e in fetch.items() if e.kind != Conversation.Kind.SELF}
    if with_receipts:
        pointers = _read_pointers_visible_many(conversation_ids=list(with_receipts), viewer=user)
        for pk, entry in with_receipts.items():
            entry.read_pointers.update(pointers.get(pk, {}))
    return results


def _read_pointers_visible_many(*, conversation_ids: list[int], viewer: User) -> dict[int, dict[str, int]]:
    """`read_pointers_visible` for several conversations in one query (the viewer's own
    setting comes with the rows when the viewer is a current member of one of them)."""
    if not conversation_ids:
        return {}
    rows = list(
        Membership.objects.filter(conversation_id__in=conversation_ids, left_at__isnull=True).values_list(
            "conversation_id", "user_id", "user__public_id", "last_read_seq", "user__read_receipts_enabled"
        )
    )
    own = next((enabled for _c, pk, _id, _seq, enabled in rows if pk == viewer.pk), None)
    viewer_enabled = user_receipts_enabled(viewer) if own is None else own
    found: dict[int, dict[str, int]] = {}
    for conversation_id, pk, public_id, seq, enabled in rows:
        if pk == viewer.pk or (viewer_enabled and enabled):
            found.setdefault(conversation_id, {})[public_id] = seq
    return found
