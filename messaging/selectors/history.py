"""Reads of the messaging domain. Every read of one conversation goes through
`conversation_get_for_member`, so a non-member learns nothing, not even that it exists."""

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from ..models import Attachment, Conversation, Membership, Message, MessageEdit, Reaction


def _not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such conversation.")


def membership_get(
    *, user: User, conversation_id: object, include_left: bool = False, kind: str | None = None
) -> Membership:
    """The caller's membership of a conversation, with the conversation joined.

    Unknown ids, malformed ids, conversations of another `kind` than asked for, and
    conversations the user is not in all raise the same not_found error.
    """
    if not is_public_id(conversation_id):
        raise _not_found()
    membership = (
        Membership.objects.select_related("conversation")
        .filter(user=user, conversation__public_id=conversation_id)
        .first()
    )
    if membership is None:
        raise _not_found()
    if membership.left_at is not None and not include_left:
        raise _not_found()
    if kind is not None and membership.conversation.kind != kind:
        raise _not_found()
    return membership


def conversation_get_for_member(
    *, user: User, conversation_id: object, include_left: bool = False, kind: str | None = None
) -> Conversation:
    return membership_get(
        user=user, conversation_id=conversation_id, include_left=include_left, kind=kind
    ).conversation


def self_conversation_get(*, user: User) -> Conversation | None:
    return Conversation.objects.filter(unique_key=self_key(user)).first()


def self_key(user: User) -> str:
    return f"self:{user.pk}"


def direct_key(a: User, b: User) -> str:
    low, high = sorted((a.pk, b.pk))
    return f"direct:{low}:{high}"


def direct_conversation_find(*, user: User, other: User) -> Conversation | None:
    return Conversation.objects.filter(unique_key=direct_key(user, other)).first()


def conversation_member_ids(*, conversation: Conversation) -> list[str]:
    """Public ids of the current members, in order of joining."""
    return list(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True)
        .order_by("joined_at", "pk")
        .values_list("user__public_id", flat=True)
    )


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    kind: str
    last_message_at: datetime
    last_seq: int
    last_read_seq: int
    unread: int
    partner_id: str | None
    partner_name: str | None
    title: str | None = None
    last_rev: int = 0  # the conversation's latest change (docs/protocol.md §14)


# The columns a conversation summary is built from: plain rows, no model instances (the
# handshake reads every membership of a user).
_SUMMARY_COLUMNS = (
    "conversation_id",
    "conversation__public_id",
    "conversation__kind",
    "conversation__last_message_at",
    "conversation__last_seq",
    "conversation__last_rev",
    "conversation__title",
    "last_read_seq",
)
_RECENT_FIRST = ("-conversation__last_message_at", "-conversation_id")


def _membership_rows(user: User, kinds: tuple[str, ...] | None):
    memberships = Membership.objects.filter(user=user, left_at__isnull=True)
    if kinds:
        memberships = memberships.filter(conversation__kind__in=kinds)
    return memberships.order_by(*_RECENT_FIRST).values_list(*_SUMMARY_COLUMNS)


def conversation_list_for_user(
    *, user: User, kinds: tuple[str, ...] | None = None
) -> list[ConversationSummary]:
    """The user's current conversations, most recent activity first, with unread counts.

    Two queries whatever the number of conversations: memberships with conversations, then the
    partners of the direct ones. Bounded by CHAT CONVERSATION_LIST_LIMIT.
    """
    rows = list(_membership_rows(user, kinds)[: settings.CHAT["CONVERSATION_LIST_LIMIT"]])
    return _summaries(user, rows)


@dataclass(frozen=True)
class ConversationSnapshot:
    """What a new connection needs at once: the group conversations to subscribe to (all of
    them) and the conversation list to greet it with (the CONVERSATION_LIST_LIMIT most recent)."""

    group_ids: list[str]
    summaries: list[ConversationSummary]


def conversation_snapshot_for_user(*, user: User, kinds: tuple[str, ...]) -> ConversationSnapshot:
    """`conversation_ids_for_user` (groups) and `conversation_list_for_user(kinds)` from one
    read of the memberships, as plain rows (two queries in all): a handshake pays once."""
    rows = list(_membership_rows(user, kinds))
    group_ids = [row[1] for row in rows if row[2] == Conversation.Kind.GROUP]
    return ConversationSnapshot(group_ids, _summaries(user, rows[: settings.CHAT["CONVERSATION_LIST_LIMIT"]]))


def _summaries(user: User, rows: list[tuple]) -> list[ConversationSummary]:
    """Summaries of membership rows (`_SUMMARY_COLUMNS`), in their order; one query for the
    partners of the direct ones."""
    direct_ids = [row[0] for row in rows if row[2] == Conversation.Kind.DIRECT]
    partners: dict[int, tuple[str, str]] = {}
    if direct_ids:
        for conv_id, public_id, name in (
            Membership.objects.filter(conversation_id__in=direct_ids)
            .exclude(user=user)
            .values_list("conversation_id", "user__public_id", "user__display_name")
        ):
            partners[conv_id] = (public_id, name)
    result = []
    for pk, public_id, kind, last_message_at, last_seq, last_rev, title, last_read_seq in rows:
        partner = partners.get(pk)
        result.append(
            ConversationSummary(
                id=public_id,
                kind=kind,
                last_message_at=last_message_at,
                last_seq=last_seq,
                last_read_seq=last_read_seq,
                unread=max(last_seq - last_read_seq, 0),
                partner_id=partner[0] if partner else None,
                partner_name=partner[1] if partner else None,
                title=title or None,
                last_rev=last_rev,
            )
        )
    return result


def conversation_summary_get(*, user: User, conversation_id: object) -> ConversationSummary:
    """One current conversation of the user, in the shape of `conversation_list_for_user`."""
    membership = membership_get(user=user, conversation_id=conversation_id)
    conversation = membership.conversation
    partner = (
        direct_partner(conversation=conversation, user=user)
        if conversation.kind == Conversation.Kind.DIRECT
        else None
    )
    return ConversationSummary(
        id=conversation.public_id,
        kind=conversation.kind,
        last_message_at=conversation.last_message_at,
        last_seq=conversation.last_seq,
        last_read_seq=membership.last_read_seq,
        unread=max(conversation.last_seq - membership.last_read_seq, 0),
        partner_id=partner.public_id if partner else None,
        partner_name=partner.display_name if partner else None,
        title=conversation.title or None,
        last_rev=conversation.last_rev,
    )


def unread_total(*, user: User) -> int:
    values = Membership.objects.filter(user=user, left_at__isnull=True).values_list(
        F("conversation__last_seq") - F("last_read_seq"), flat=True
    )
    return sum(max(v, 0) for v in values)


def message_history(
    *,
    user: User,
    conversation_id: object,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = None,
    kind: str | None = None,
) -> tuple[Conversation, list[Message]]:
    """One page of a conversation, keyset-paginated on the sequence number.

    Without `after`: the newest messages older than `before` (or the newest), newest first.
    With `after`: the oldest messages newer than `after`, oldest first (catching up).
    A member who left reads only up to the moment they left.
    """
    membership = membership_get(user=user, conversation_id=conversation_id, include_left=True, kind=kind)
    page = _page_size(limit)
    qs: QuerySet[Message] = Message.objects.filter(conversation_id=membership.conversation_id)
    if membership.left_seq is not None:
        qs = qs.filter(seq__lte=membership.left_seq)
    if before is not None:
        qs = qs.filter(seq__lt=_seq(before, "before"))
    if after is not None:
        qs = qs.filter(seq__gt=_seq(after, "after")).order_by("seq")
    else:
        qs = qs.order_by("-seq")
    # The quoted message of a reply comes in the same query (two joins), not one per reply.
    messages = list(qs.select_related("sender", "reply_to", "reply_to__sender", "attachment")[:page])
    return membership.conversation, messages


@dataclass(frozen=True)
class MessagePage:
    conversation: Conversation
    messages: list[Message]
    # Where the next page starts: pass as `before` (older) or `after` (newer); None at the end.
    next_before: int | None
    next_after: int | None
    # message pk -> its reactions (`message_reactions`); empty when not asked for.
    reactions: dict[int, list["ReactionCount"]] = field(default_factory=dict)


def message_page(
    *,
    user: User,
    conversation_id: object,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> MessagePage:
    """`message_history` with the cursor of the following page.

    A short page is the last one. Sequence numbers start at 1 with no gaps, so a page reaching
    seq 1 is the oldest even when it is full.
    """
    conversation, messages = message_history(
        user=user, conversation_id=conversation_id, before=before, after=after, limit=limit
    )
    full = len(messages) == _page_size(limit)
    next_before = next_after = None
    if messages and full and after is None and messages[-1].seq > 1:
        next_before = messages[-1].seq
    if messages and full and after is not None:
        next_after = messages[-1].seq
    reactions = message_reactions(messages=messages, viewer=user)
    return MessagePage(conversation, messages, next_before, next_after, reactions)


def _page_size(limit: int | None) -> int:
    maximum = settings.CHAT["HISTORY_MAX_PAGE_SIZE"]
    if limit is None:
        return settings.CHAT["HISTORY_PAGE_SIZE"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ApplicationError(ErrorCode.INVALID, "limit must be a positive integer.", {"field": "limit"})
    return min(limit, maximum)


def _seq(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApplicationError(
            ErrorCode.INVALID, f"{field} must be a non-negative integer.", {"field": field}
        )
    return value


def read_pointers(*, conversation: Conversation) -> dict[str, int]:
    """user public id -> last read seq, for every current member."""
    return dict(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
            "user__public_id", "last_read_seq"
        )
    )


def direct_partner(*, conversation: Conversation, user: User) -> User | None:
    membership = (
        Membership.objects.filter(conversation=conversation).exclude(user=user).select_related("user").first()
    )
    return membership.user if membership else None


@dataclass(frozen=True)
class ConversationPage:
    conversation: Conversation
    messages: list[Message]
    read_pointers: dict[str, int]
    partner: User | None
    reactions: dict[int, list["ReactionCount"]] = field(default_factory=dict)


def conversation_page(
    *,
    user: User,
    conversation_id: object,
    kind: str,
    before: int | None = None,
    limit: int | None = None,
) -> ConversationPage:
    """A page of history with what a client needs to show it: read pointers and, for direct
    chats, the partner."""
    conversation, messages = message_history(
        user=user, conversation_id=conversation_id, before=before, limit=limit, kind=kind
    )
    pointers = (
        read_pointers_visible(conversation=conversation, viewer=user)
        if kind != Conversation.Kind.SELF
        else {}
    )
    partner = (
        direct_partner(conversation=conversation, user=user) if kind == Conversation.Kind.DIRECT else None
    )
    reactions = message_reactions(messages=messages, viewer=user)
    return ConversationPage(conversation, messages, pointers, partner, reactions)


def conversation_ids_for_user(*, user: User, kinds: tuple[str, ...]) -> list[str]:
    """Public ids of the user's current conversations of these kinds (bus subscriptions)."""
    return list(
        Membership.objects.filter(user=user, left_at__isnull=True, conversation__kind__in=kinds).values_list(
            "conversation__public_id", flat=True
        )
    )


# --- receipts, typing and presence audiences ------------------------------------------------

# Most members listed by name in a seen-by answer; the counts are always complete. A group has
# up to CHAT GROUP_MAX_MEMBERS members, and a client shows a handful of names and a number.
SEEN_BY_LIST_LIMIT = 100


def user_receipts_enabled(user: User) -> bool:
    """From the database, not from the (possibly long-lived) object a connection holds."""
    return User.objects.filter(pk=user.pk).values_list("read_receipts_enabled", flat=True).get()


def read_pointers_visible(*, conversation: Conversation, viewer: User) -> dict[str, int]:
    """`read_pointers` as `viewer` may see them: always their own; the other members' only when
    both the viewer and that member have read receipts on (private receipts, as in Matrix)."""
    rows = list(
        Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
            "user_id", "user__public_id", "last_read_seq", "user__read_receipts_enabled"
        )
    )
    own = next((enabled for pk, _id, _seq, enabled in rows if pk == viewer.pk), None)
    viewer_enabled = user_receipts_enabled(viewer) if own is None else own
    return {
        public_id: seq
        for pk, public_id, seq, enabled in rows
        if pk == viewer.pk or (viewer_enabled and enabled)
    }


def message_seqs(*, conversation: Conversation, message_ids: list[str]) -> dict[str, int]:
    """public id -> seq of those of `message_ids` that are messages of `conversation`."""
    ids = [i for i in message_ids if is_public_id(i)]
    return dict(
        Message.objects.filter(conversation=conversation, public_id__in=ids).values_list("public_id", "seq")
    )


@dataclass(frozen=True)
class Reader:
    id: str
    display_name: str


@dataclass(frozen=True)
class SeenBy:
    conversation: Conversation
    message: Message
    seen_by: list[Reader]  # members whose read pointer reached the message (at most SEEN_BY_LIST_LIMIT)
    delivered_to: list[Reader]  # reached by a device but not read yet
    seen_count: int
    delivered_count: int


def message_seen_by(
    *, user: User, conversation_id: object, message_id: object = None, seq: object = None
) -> SeenBy:
    """Who has read (and who only received) one message, from the members' pointers.

    The message is named by `message_id` or by `seq`. The sender is never listed, nor are
    members who turned read receipts off; a viewer who turned them off sees nobody's
    (permission_denied). One query for the message, one for the members.
    """
    membership = membership_get(user=user, conversation_id=conversation_id)
    conversation = membership.conversation
    messages = Message.objects.filter(conversation=conversation).select_related("sender")
    if message_id is not None:
        message = messages.filter(public_id=message_id).first() if is_public_id(message_id) else None
    elif isinstance(seq, int) and not isinstance(seq, bool):
        message = messages.filter(seq=seq).first()
    else:
        raise ApplicationError(ErrorCode.INVALID, "Name the message by id or seq.", {"field": "seq"})
    if message is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "message_id"})
    rows = Membership.objects.filter(conversation=conversation, left_at__isnull=True).values_list(
        "user_id",
        "user__public_id",
        "user__display_name",
        "user__read_receipts_enabled",
        "last_read_seq",
        "last_delivered_seq",
    )
    seen: list[Reader] = []
    delivered: list[Reader] = []
    for pk, public_id, name, enabled, read_seq, delivered_seq in rows.order_by("joined_at", "pk"):
        if pk == user.pk and not enabled:
            raise ApplicationError(
                ErrorCode.PERMISSION_DENIED, "Turn read receipts on to see who read a message."
            )
        if pk == message.sender_id or not enabled:
            continue
        if read_seq >= message.seq:
            seen.append(Reader(public_id, name))
        elif max(read_seq, delivered_seq) >= message.seq:
            delivered.append(Reader(public_id, name))
    return SeenBy(
        conversation,
        message,
        seen[:SEEN_BY_LIST_LIMIT],
        delivered[:SEEN_BY_LIST_LIMIT],
        len(seen),
        len(delivered),
    )


@dataclass(frozen=True)
class TypingTarget:
    conversation_id: str
    kind: str
    peer_ids: tuple[str, ...]  # the other members of a direct chat; empty for a group (its bus group)


def conversation_typing_target(*, user: User, conversation_id: object) -> TypingTarget:
    """Where a member's typing indicator goes: a direct chat's other member, or a group's
    members. Notes to self have nobody to tell (invalid)."""
    membership = membership_get(user=user, conversation_id=conversation_id)
    conversation = membership.conversation
    if conversation.kind == Conversation.Kind.SELF:
        raise ApplicationError(ErrorCode.INVALID, "Nobody else is in this conversation.", {"field": "ChatId"})
    peers: tuple[str, ...] = ()
    if conversation.kind == Conversation.Kind.DIRECT:
        peers = tuple(
            Membership.objects.filter(conversation=conversation, left_at__isnull=True)
            .exclude(user=user)
            .values_list("user__public_id", flat=True)
        )
    return TypingTarget(conversation.public_id, conversation.kind, peers)


def _shared_conversations(user_pk) -> QuerySet[Membership]:
    """The current direct and group conversations of a user (`user_pk`: a pk or a subquery)."""
    return Membership.objects.filter(
        user_id__in=user_pk if isinstance(user_pk, QuerySet) else [user_pk],
        left_at__isnull=True,
        conversation__kind__in=(Conversation.Kind.DIRECT, Conversation.Kind.GROUP),
    ).values("conversation_id")


def co_member_ids(*, user_id: str) -> list[str]:
    """Public ids of the users a presence change of this user is pushed to, in one query: the
    members of their direct chats and of their groups of at most CHAT PRESENCE_PUSH_GROUP_MAX
    members. Pushing to every member of large groups costs members x members events when a
    group comes online together (measured: 604,284 events for 1,000 members connecting);
    members of larger groups ask with `fetch-presence` instead."""
    user_pk = User.objects.filter(public_id=user_id).values("pk")
    limit = settings.CHAT["PRESENCE_PUSH_GROUP_MAX"]
    pushed = (
        Membership.objects.filter(left_at__isnull=True, conversation_id__in=_shared_conversations(user_pk))
        .values("conversation_id")
        .annotate(members=Count("pk"))
        .filter(members__lte=limit)
        .values("conversation_id")
    )
    return list(
        Membership.objects.filter(left_at__isnull=True, conversation_id__in=pushed)
        .exclude(user__public_id=user_id)
        .values_list("user__public_id", flat=True)
        .distinct()
    )


def co_members_among(*, user: User, user_ids: list[str]) -> set[str]:
    """Which of `user_ids` share a current direct or group conversation with `user`."""
    return set(
        Membership.objects.filter(
            left_at__isnull=True,
            user__public_id__in=user_ids,
            conversation_id__in=_shared_conversations(user.pk),
        )
        .exclude(user=user)
        .values_list("user__public_id", flat=True)
        .distinct()
    )


# --- edits and reactions ------------------------------------------------------------------

# Most distinct emoji shown per message in history, most used first. A message can carry more
# (each member may add CHAT MAX_REACTIONS_PER_USER); a client shows a row of them.
REACTIONS_SHOWN = 50


def _message_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "message_id"})


def message_get_for_member(
    *, user: User, message_id: object, conversation_id: object = None, for_update: bool = False
) -> tuple[Membership, Message]:
    """A message (with conversation and sender) of a conversation the user is a current member
    of, and that membership. `for_update` locks the message row (inside a transaction).

    Unknown and malformed ids, a message of another conversation than `conversation_id` (when
    given) and a message of a conversation the user is not in all raise the same not_found.
    """
    if not is_public_id(message_id):
        raise _message_not_found()
    messages = Message.objects.select_related("conversation", "sender", "attachment")
    if for_update:
        # FOR NO KEY UPDATE: the change then takes the conversation's row lock for its revision
        # (`_take_rev`), while a send holds that lock and may check a reply's foreign key to this
        # row (FOR KEY SHARE). A plain FOR UPDATE here would deadlock with such a send.
        messages = messages.select_for_update(of=("self",), no_key=True)
    message = messages.filter(public_id=message_id).first()
    if message is None:
        raise _message_not_found()
    if conversation_id is not None and message.conversation.public_id != conversation_id:
        raise _message_not_found()
    try:
        membership = membership_get(user=user, conversation_id=message.conversation.public_id)
    except ApplicationError:
        raise _message_not_found() from None
    return membership, message


@dataclass(frozen=True)
class ReactionCount:
    emoji: str
    count: int
    mine: bool  # the viewer is one of them


def message_reactions(*, messages: list[Message], viewer: User) -> dict[int, list[ReactionCount]]:
    """message pk -> its reactions, most used first (at most REACTIONS_SHOWN), for a page of
    history: one grouped query whatever the page size. Hidden and deleted messages show none."""
    pks = [m.pk for m in messages if m.hidden_at is None and m.deleted_at is None]
    if not pks:
        return {}
    rows = (
        Reaction.objects.filter(message_id__in=pks)
        .values("message_id", "emoji")
        .annotate(count=Count("id"), mine=Count("id", filter=Q(user_id=viewer.pk)))
        .order_by("message_id", "-count", "emoji")
    )
    found: dict[int, list[ReactionCount]] = {}
    for row in rows:
        shown = found.setdefault(row["message_id"], [])
        if len(shown) < REACTIONS_SHOWN:
            shown.append(ReactionCount(row["emoji"], row["count"], row["mine"] > 0))
    return found


def reactions_of_user(*, user: User, message: Message) -> list[str]:
    """The emoji the user has on the message now, oldest first."""
    return list(
        Reaction.objects.filter(message=message, user=user)
        .order_by("created_at", "pk")
        .values_list("emoji", flat=True)
    )


def reaction_count(*, message: Message, emoji: str) -> int:
    """How many members put `emoji` on the message."""
    return Reaction.objects.filter(message=message, emoji=emoji).count()


def message_edits(
    *, user: User, message_id: object, conversation_id: object = None
) -> tuple[Message, list[MessageEdit]]:
    """A message's edit history for a member, newest first: the texts it had before each edit
    (at most CHAT HISTORY_MAX_PAGE_SIZE). Members see it, as they see the "edited" mark. A hidden
    or deleted message has none to show."""
    _membership, message = message_get_for_member(
        user=user, message_id=message_id, conversation_id=conversation_id
    )
    if message.hidden_at is not None or message.deleted_at is not None:
        return message, []
    limit = settings.CHAT["HISTORY_MAX_PAGE_SIZE"]
    edits = list(
        MessageEdit.objects.filter(message=message)
        .select_related("editor")
        .order_by("-edited_at", "-pk")[:limit]
    )
    return message, edits


# --- resync ---------------------------------------------------------------------------------


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


def attachment_for_serving(*, name: str) -> Attachment | None:
    """The attachment stored under `name`, if its file may be served: not erased, and not of a
    message that was deleted or hidden. Unused uploads are served (their URL went only to the
    uploader)."""
    attachment = (
        Attachment.objects.select_related("message").filter(file=name, removed_at__isnull=True).first()
    )
    if attachment is None:
        return None
    message = getattr(attachment, "message", None)
    if message is not None and (message.hidden_at is not None or message.deleted_at is not None):
        return None
    return attachment
