"""History and what is shown with it: keyset-paginated pages of messages, read pointers (as
the viewer may see them) and seen-by, reactions, edit histories, and the attachments whose
files may be served."""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from accounts.models import User
from chatproject.core import rows
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from ..models import Attachment, Conversation, Membership, Message, MessageEdit, Reaction
from . import pages
from .access import direct_partner, membership_checked, membership_get, message_get_for_member


def message_history(
    *,
    user: User,
    conversation_id: object,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = None,
    kind: str | None = None,
    include_left: bool = True,
) -> tuple[Conversation, list[Message]]:
    """One page of a conversation, keyset-paginated on the sequence number.

    Without `after`: the newest messages older than `before` (or the newest), newest first.
    With `after`: the oldest messages newer than `after`, oldest first (catching up).
    A member who left reads only up to the moment they left (`include_left=False`: not at all,
    for protocols whose clients lose the room when they leave it).
    """
    membership, messages, _members, _reactions = _history_page(
        user=user,
        conversation_id=conversation_id,
        before=before,
        after=after,
        limit=limit,
        kind=kind,
        include_left=include_left,
    )
    return membership.conversation, messages


def _history_page(
    *,
    user: User,
    conversation_id: object,
    before: object,
    after: object,
    limit: object,
    kind: str | None = None,
    include_left: bool = True,
    members: str | None = None,
    reactions: bool = False,
) -> tuple[Membership, list[Message], list[tuple], dict[int, list["ReactionCount"]]]:
    """`message_history`, with the `members` rows (`pages.members_sql`) and the reactions
    (`message_reactions`) when asked for: two round trips in all (`pages`)."""
    if not is_public_id(conversation_id):
        membership_get(user=user, conversation_id=conversation_id)  # not_found
    try:
        page = _page_size(limit)
        before = None if before is None else _seq(before, "before")
        after = None if after is None else _seq(after, "after")
    except ApplicationError:
        # A conversation the caller may not read is not found, whatever else is wrong.
        membership_get(user=user, conversation_id=conversation_id, include_left=include_left, kind=kind)
        raise
    db = connections[DEFAULT_DB_ALIAS]
    membership, messages, found = pages.page_read(
        db,
        user_pk=user.pk,
        conversation_id=conversation_id,
        before=before,
        after=after,
        limit=page,
        members=members,
    )
    membership = membership_checked(membership, include_left=include_left, kind=kind)
    shown = [m.pk for m in messages if m.hidden_at is None and m.deleted_at is None] if reactions else []
    counted = pages.senders_and_reactions(db, messages, reactions_of=shown, viewer_pk=user.pk)
    return membership, messages, found, _reaction_counts(counted)


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
    membership, messages, _members, reactions = _history_page(
        user=user, conversation_id=conversation_id, before=before, after=after, limit=limit, reactions=True
    )
    full = len(messages) == _page_size(limit)
    next_before = next_after = None
    if messages and full and after is None and messages[-1].seq > 1:
        next_before = messages[-1].seq
    if messages and full and after is not None:
        next_after = messages[-1].seq
    return MessagePage(membership.conversation, messages, next_before, next_after, reactions)


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
    direct = kind == Conversation.Kind.DIRECT
    members = pages.MEMBERS if direct else None if kind == Conversation.Kind.SELF else pages.POINTERS
    membership, messages, found, reactions = _history_page(
        user=user,
        conversation_id=conversation_id,
        before=before,
        after=None,
        limit=limit,
        kind=kind,
        members=members,
        reactions=True,
    )
    conversation, partner = membership.conversation, None
    if direct:
        # `direct_partner`: the first other membership by pk, current or left; without one, a
        # chat request's recipient if one waits (rare: asked again, as before).
        other = next((row for row in found if row[0] != user.pk), None)
        if other is None:
            partner = direct_partner(conversation=conversation, user=user)
        else:
            partner = rows.maker(connections[DEFAULT_DB_ALIAS], User)(other[5:])
        found = [row[:4] for row in found if row[4] is None]  # the current members' pointers
    pointers = _visible(found, user) if members is not None else {}
    return ConversationPage(conversation, messages, pointers, partner, reactions)


# --- read pointers and seen-by ---------------------------------------------------------------

# Most members listed by name in a seen-by answer; the counts are always complete. A group has
# up to CHAT GROUP_MAX_MEMBERS members, and a client shows a handful of names and a number.
SEEN_BY_LIST_LIMIT = 100


def user_receipts_enabled(user: User) -> bool:
    """From the database, not from the (possibly long-lived) object a connection holds."""
    return User.objects.filter(pk=user.pk).values_list("read_receipts_enabled", flat=True).get()


def read_pointers_visible(*, conversation: Conversation, viewer: User) -> dict[str, int]:
    """`read_pointers` as `viewer` may see them: always their own; the other members' only when
    both the viewer and that member have read receipts on (private receipts, as in Matrix)."""
    db = connections[DEFAULT_DB_ALIAS]
    [found] = pages.fetched(db, [(pages.members_sql(db.vendor, pages.POINTERS, False), [conversation.pk])])
    return _visible(found, viewer)


def _visible(found: list[tuple], viewer: User) -> dict[str, int]:
    """The pointers `viewer` may see, from the current members' (user pk, public id, last read
    seq, receipts enabled) rows."""
    own = next((enabled for pk, _id, _seq, enabled in found if pk == viewer.pk), None)
    viewer_enabled = user_receipts_enabled(viewer) if own is None else own
    return {
        public_id: seq
        for pk, public_id, seq, enabled in found
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


# --- edits and reactions ------------------------------------------------------------------

# Most distinct emoji shown per message in history, most used first. A message can carry more
# (each member may add CHAT MAX_REACTIONS_PER_USER); a client shows a row of them.
REACTIONS_SHOWN = 50


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
    db = connections[DEFAULT_DB_ALIAS]
    [found] = pages.fetched(db, [pages.reactions_statement(db, pks, viewer.pk)])
    return _reaction_counts(found)


def _reaction_counts(found: list[tuple]) -> dict[int, list[ReactionCount]]:
    """`message_reactions` of the (message pk, emoji, count, the viewer's count) rows, in their
    order (most used first per message)."""
    counts: dict[int, list[ReactionCount]] = {}
    for message_id, emoji, count, mine in found:
        shown = counts.setdefault(message_id, [])
        if len(shown) < REACTIONS_SHOWN:
            shown.append(ReactionCount(emoji, count, mine > 0))
    return counts


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
