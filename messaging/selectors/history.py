"""History and what is shown with it: keyset-paginated pages of messages, read pointers (as
the viewer may see them) and seen-by, reactions, edit histories, and the attachments whose
files may be served."""

from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from accounts.models import User
from chatproject.core import rows
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from ..models import Attachment, Conversation, Membership, Message, MessageEdit, Reaction
from .access import direct_partner, membership_get, message_get_for_member


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
    membership = membership_get(
        user=user, conversation_id=conversation_id, include_left=include_left, kind=kind
    )
    page = _page_size(limit)
    messages = _page(
        membership.conversation_id,
        left_seq=membership.left_seq,
        before=None if before is None else _seq(before, "before"),
        after=None if after is None else _seq(after, "after"),
        limit=page,
    )
    return membership.conversation, messages


# A page in hand-written SQL (chatproject.core.rows): the messages with the messages they quote
# and their attachments joined, then their senders, each distinct one made once. The same
# instances a QuerySet with `prefetch_related("sender", "reply_to__sender", "attachment")`
# made, and every consumer reads them as before; through the ORM, building the three or four
# queries and prefetching cost about 8 ms of CPU a page of 50 on the bench machine against
# 0.7 ms for the query itself (bench/README.md, history, session 5). The quoted message and
# the attachment are joined, not prefetched: their columns are NULL on rows without them, and
# the round trips were the cost once the ORM was gone.


@cache
def _page_sql(vendor: str, left: bool, before: bool, after: bool) -> str:
    f, a = Message._meta, Attachment._meta
    db = connections[DEFAULT_DB_ALIAS]
    fields, attachment_fields = rows.concrete_fields(Message), rows.concrete_fields(Attachment)

    def col(name: str) -> str:
        return rows.q(db, "m", f.get_field(name).column)

    where = [f"{col('conversation')} = %s"]
    where += [f"{col('seq')} <= %s"] if left else []
    where += [f"{col('seq')} < %s"] if before else []
    where += [f"{col('seq')} > %s"] if after else []
    return (
        f"SELECT {rows.columns(db, 'm', fields)}, {rows.columns(db, 'r', fields)}, "  # noqa: S608
        f"{rows.columns(db, 'a', attachment_fields)} FROM {rows.table(db, Message)} m "
        f"LEFT JOIN {rows.table(db, Message)} r ON {rows.q(db, 'r', f.pk.column)} = {col('reply_to')} "
        f"LEFT JOIN {rows.table(db, Attachment)} a ON {rows.q(db, 'a', a.pk.column)} = {col('attachment')} "
        f"WHERE {' AND '.join(where)} ORDER BY {col('seq')} {'ASC' if after else 'DESC'} LIMIT %s"
    )


@cache
def _users_sql(vendor: str) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    pk = rows.q(db, "u", User._meta.pk.column)
    return (
        f"SELECT {rows.columns(db, 'u', rows.concrete_fields(User))} "  # noqa: S608
        f"FROM {rows.table(db, User)} u WHERE {pk} "
    )


def _page(
    conversation_pk: int, *, left_seq: int | None, before: int | None, after: int | None, limit: int
) -> list[Message]:
    """Messages of the conversation in (after, min(before, left_seq + 1)), newest first, or
    oldest first with `after`; at most `limit`."""
    db = connections[DEFAULT_DB_ALIAS]
    sql = _page_sql(db.vendor, left_seq is not None, before is not None, after is not None)
    bounds = [value for value in (left_seq, before, after) if value is not None]
    n = len(rows.concrete_fields(Message))
    message, attachment = rows.maker(db, Message), rows.maker(db, Attachment)
    reply_field, attachment_field = Message.reply_to.field, Message.attachment.field
    messages: list[Message] = []
    quoted: list[Message] = []
    with db.cursor() as cursor:
        cursor.execute(sql, [conversation_pk, *bounds, limit])
        for row in cursor.fetchall():
            m = message(row[:n])
            messages.append(m)
            if m.reply_to_id is not None:
                target = message(row[n : 2 * n])
                reply_field.set_cached_value(m, target)
                quoted.append(target)
            if m.attachment_id is not None:
                file = attachment(row[2 * n :])
                attachment_field.set_cached_value(m, file)
                attachment_field.remote_field.set_cached_value(file, m)
    _with_senders(db, messages + quoted)
    return messages


def _with_senders(db: BaseDatabaseWrapper, messages: list[Message]) -> None:
    """Each message's sender cached on it, from one query (none when no message has one)."""
    pks = {m.sender_id for m in messages} - {None}
    if not pks:
        return
    where, params = rows.any_of(db, sorted(pks))
    user = rows.maker(db, User)
    with db.cursor() as cursor:
        cursor.execute(_users_sql(db.vendor) + where, params)
        senders = {u.pk: u for u in map(user, cursor.fetchall())}
    sender_field = Message.sender.field
    for m in messages:
        if m.sender_id is not None:
            sender_field.set_cached_value(m, senders.get(m.sender_id))


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
    partner = None
    if kind == Conversation.Kind.DIRECT:
        pointers, partner = _direct_pointers_and_partner(conversation=conversation, viewer=user)
    elif kind != Conversation.Kind.SELF:
        pointers = read_pointers_visible(conversation=conversation, viewer=user)
    else:
        pointers = {}
    reactions = message_reactions(messages=messages, viewer=user)
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
    with db.cursor() as cursor:
        cursor.execute(_members_sql(db.vendor, False), [conversation.pk])
        found = cursor.fetchall()
    return _visible(found, viewer)


def _visible(found: list[tuple], viewer: User) -> dict[str, int]:
    """The pointers `viewer` may see among current members' (user pk, public id, last read seq,
    receipts enabled) rows."""
    own = next((enabled for pk, _id, _seq, enabled in found if pk == viewer.pk), None)
    viewer_enabled = user_receipts_enabled(viewer) if own is None else own
    return {
        public_id: seq
        for pk, public_id, seq, enabled in found
        if pk == viewer.pk or (viewer_enabled and enabled)
    }


@cache
def _members_sql(vendor: str, with_users: bool) -> str:
    """(user pk, public id, last read seq, read receipts enabled) of the conversation's (`%s`)
    current members; `with_users`: of every membership, current or left, then whether it is
    current and the user's columns, in the order of the memberships' pks."""
    m, u = Membership._meta, User._meta
    db = connections[DEFAULT_DB_ALIAS]
    left_at = rows.q(db, "m", m.get_field("left_at").column)
    select = ", ".join(
        [
            rows.q(db, "m", m.get_field("user").column),
            rows.q(db, "u", u.get_field("public_id").column),
            rows.q(db, "m", m.get_field("last_read_seq").column),
            rows.q(db, "u", u.get_field("read_receipts_enabled").column),
        ]
        + ([left_at, rows.columns(db, "u", rows.concrete_fields(User))] if with_users else [])
    )
    return (
        f"SELECT {select} FROM {rows.table(db, Membership)} m "  # noqa: S608
        f"JOIN {rows.table(db, User)} u ON {rows.q(db, 'u', u.pk.column)} = {rows.q(db, 'm', m.get_field('user').column)} "
        f"WHERE {rows.q(db, 'm', m.get_field('conversation').column)} = %s "
        + ("" if with_users else f"AND {left_at} IS NULL ")
        + f"ORDER BY {rows.q(db, 'm', m.pk.column)}"
    )


def _direct_pointers_and_partner(
    *, conversation: Conversation, viewer: User
) -> tuple[dict[str, int], User | None]:
    """`read_pointers_visible` and `direct_partner` of a direct chat from one query: its two
    membership rows, each with its user."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(_members_sql(db.vendor, True), [conversation.pk])
        found = cursor.fetchall()
    pointers = _visible([row[:4] for row in found if row[4] is None], viewer)
    # `direct_partner`: the first other membership by pk, current or left.
    other = next((row for row in found if row[0] != viewer.pk), None)
    if other is None:
        # No other member yet: a chat request's recipient, if one waits (rare; as before).
        return pointers, direct_partner(conversation=conversation, user=viewer)
    return pointers, rows.maker(db, User)(other[5:])


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
    where, params = rows.any_of(db, pks)
    select, group = _reactions_sql(db.vendor)
    found: dict[int, list[ReactionCount]] = {}
    with db.cursor() as cursor:
        cursor.execute(f"{select} {where} {group}", [viewer.pk, *params])
        for message_id, emoji, count, mine in cursor.fetchall():
            shown = found.setdefault(message_id, [])
            if len(shown) < REACTIONS_SHOWN:
                shown.append(ReactionCount(emoji, count, mine > 0))
    return found


@cache
def _reactions_sql(vendor: str) -> tuple[str, str]:
    """The grouped reactions query around `message_id <in the page>`: hand-written, as the
    page (with 50 ids the ORM's statement was also too long for psycopg's statement cache)."""
    r = Reaction._meta
    db = connections[DEFAULT_DB_ALIAS]
    message, emoji = (
        rows.q(db, "r", r.get_field("message").column),
        rows.q(db, "r", r.get_field("emoji").column),
    )
    count = f"COUNT({rows.q(db, 'r', r.pk.column)})"
    mine = f"COUNT(CASE WHEN {rows.q(db, 'r', r.get_field('user').column)} = %s THEN 1 END)"
    return (
        f"SELECT {message}, {emoji}, {count}, {mine} FROM {rows.table(db, Reaction)} r WHERE {message}",  # noqa: S608
        f"GROUP BY {message}, {emoji} ORDER BY {message} ASC, {count} DESC, {emoji} ASC",
    )


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
