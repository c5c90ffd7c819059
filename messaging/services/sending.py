"""Writes of the messaging domain. Every transport ends here; events leave only on commit."""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts import moderation
from accounts.models import ModerationAction, User
from chatproject.bus import PublishItem, publish_many_on_commit, publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id
from chatproject.core.text import is_storable

from .. import events
from ..models import Attachment, Conversation, Membership, Message, MessageEdit, Reaction
from ..selectors import (
    direct_conversation_find,
    direct_key,
    membership_get,
    message_get_for_member,
    message_seqs,
    reaction_count,
    self_conversation_get,
    self_key,
    unread_total,
    user_receipts_enabled,
)
from ..uploads import attachment_erase

logger = logging.getLogger(__name__)

CLIENT_MESSAGE_ID_MAX = 64


def self_conversation_ensure(*, user: User) -> Conversation:
    """Create the user's notes-to-self conversation if it does not exist (idempotent).

    Called at email verification; safe to call again at any time.
    """
    existing = self_conversation_get(user=user)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.SELF, unique_key=self_key(user), created_by=user
            )
            Membership.objects.create(conversation=conversation, user=user, role=Membership.Role.OWNER)
    except IntegrityError:
        # A concurrent call created it first.
        conversation = Conversation.objects.get(unique_key=self_key(user))
    return conversation


def chat_partner_get(*, user: User, other_user_id: object) -> User:
    """The user someone wants to chat with: must exist, be verified, active and not banned."""
    if not is_public_id(other_user_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})
    other = User.objects.filter(public_id=other_user_id).first()
    if other is None or not other.can_chat:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})
    if other.pk == user.pk:
        raise ApplicationError(ErrorCode.INVALID, "Use the notes-to-self chat to write to yourself.")
    return other


def direct_conversation_get_or_create(
    *, user: User, other_user_id: object
) -> tuple[Conversation, User, bool]:
    """The one direct conversation between `user` and another user, created on first use.

    Returns (conversation, partner, created). At most one conversation exists per pair: the
    pair's key is unique in the database, so concurrent creations converge on one row.
    """
    other = chat_partner_get(user=user, other_user_id=other_user_id)
    existing = direct_conversation_find(user=user, other=other)
    if existing is not None:
        return existing, other, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.DIRECT, unique_key=direct_key(user, other), created_by=user
            )
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user=user, role=Membership.Role.MEMBER),
                    Membership(conversation=conversation, user=other, role=Membership.Role.MEMBER),
                ]
            )
            publish_on_commit(
                events.conversation_created(conversation=conversation, creator=user, members=[user, other]),
                user_ids=[user.public_id, other.public_id],
            )
    except IntegrityError:
        return Conversation.objects.get(unique_key=direct_key(user, other)), other, False
    return conversation, other, True


def _validate_content(content: object) -> str:
    if not isinstance(content, str):
        raise ApplicationError(ErrorCode.INVALID, "Content must be a string.", {"field": "content"})
    if not is_storable(content):
        raise ApplicationError(
            ErrorCode.INVALID, "Content contains characters that cannot be stored.", {"field": "content"}
        )
    if not content.strip():
        raise ApplicationError(ErrorCode.INVALID, "Content must not be empty.", {"field": "content"})
    maximum = settings.CHAT["MAX_MESSAGE_LENGTH"]
    if len(content) > maximum:
        raise ApplicationError(
            ErrorCode.INVALID,
            f"Content is longer than {maximum} characters.",
            {"field": "content", "max_length": maximum},
        )
    return content


def _validate_client_message_id(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > CLIENT_MESSAGE_ID_MAX
        or not is_storable(value)
    ):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"client_message_id must be a string of 1 to {CLIENT_MESSAGE_ID_MAX} characters.",
            {"field": "client_message_id"},
        )
    return value


# What a client may send (system messages are the server's).
SENDABLE_KINDS = sorted(k for k in Message.Kind.values if k != Message.Kind.SYSTEM)


def _validate_kind(message_kind: object, attachment_id: object) -> tuple[str, str | None]:
    """The message kind a send asks for, and its attachment's id. A media kind needs an
    attachment; an attachment without a kind makes a media message of the upload's own kind
    (decided when the upload is found); other kinds take none."""
    choices = SENDABLE_KINDS
    if message_kind is not None and (not isinstance(message_kind, str) or message_kind not in choices):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"kind must be one of {', '.join(choices)}.",
            {"field": "kind", "choices": choices},
        )
    if attachment_id is None:
        if message_kind in Message.MEDIA_KINDS:
            raise ApplicationError(
                ErrorCode.INVALID,
                f"A {message_kind} message needs an attachment_id.",
                {"field": "attachment_id"},
            )
        return message_kind or Message.Kind.TEXT, None
    if message_kind is not None and message_kind not in Message.MEDIA_KINDS:
        raise ApplicationError(
            ErrorCode.INVALID, f"A {message_kind} message takes no attachment.", {"field": "attachment_id"}
        )
    if not isinstance(attachment_id, str):
        raise ApplicationError(
            ErrorCode.INVALID, "attachment_id must be a string.", {"field": "attachment_id"}
        )
    return message_kind or "", attachment_id  # "": the upload's kind, set by _attachments_take


def _same_send(message: Message, item: _Pending) -> bool:
    return (
        item.client_message_id is not None
        and message.client_message_id == item.client_message_id
        and message.sender_id == item.membership.user_id
        and message.conversation_id == item.membership.conversation_id
    )


def _validate_caption(content: object) -> str:
    """A media message's text: optional (None or ""), otherwise the rules of a text message."""
    if content is None or content == "":
        return ""
    return _validate_content(content)


# Characters that make up emoji besides the pictographs themselves (category So): joiners,
# variation selectors, skin tones, keycaps and the tags of subdivision flags.
_EMOJI_JOINERS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}
_KEYCAP_BASES = set("0123456789#*")


def _is_emoji_only(text: str) -> bool:
    for i, c in enumerate(text):
        code = ord(c)
        if (
            unicodedata.category(c) == "So"
            or c in _EMOJI_JOINERS
            or 0x1F3FB <= code <= 0x1F3FF
            or 0xE0020 <= code <= 0xE007F
        ):
            continue
        if c in _KEYCAP_BASES and "\u20e3" in text[i + 1 : i + 3]:
            continue
        return False
    return True


def _validate_emoji_message(content: object) -> str:
    maximum = settings.CHAT["EMOJI_MESSAGE_MAX_LENGTH"]
    if not isinstance(content, str) or not content or len(content) > maximum or not _is_emoji_only(content):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"An emoji message holds 1 to {maximum} emoji characters and nothing else.",
            {"field": "content", "max_length": maximum},
        )
    return content


def _validate_body(kind: str, content: object) -> str:
    """The content a message of this kind may hold ("" kind: media, decided later)."""
    if kind == Message.Kind.EMOJI:
        return _validate_emoji_message(content)
    if kind in Message.MEDIA_KINDS or kind == "":
        return _validate_caption(content)
    return _validate_content(content)


def _attachments_take(pending: list[_Pending], results: list[SendResult]) -> list[_Pending]:
    """Inside the send transaction: lock the uploads the media sends name and check each is the
    sender's, still stored, not used by a message, and of a type the message kind allows (a
    `file` message takes any). Refused sends leave the batch with not_found (an unknown id, or
    someone else's) or conflict (already used). Returns the sends left, `attachment` set."""
    wanted = [p for p in pending if p.attachment_id is not None]
    if not wanted:
        return pending
    ids = {p.attachment_id for p in wanted if is_public_id(p.attachment_id)}
    rows = Attachment.objects.select_for_update().filter(public_id__in=ids, removed_at__isnull=True)
    found = {a.public_id: a for a in rows}
    # Read after the lock, in a statement of its own: a concurrent send that took one of them
    # has committed its message by now.
    used = {
        m.attachment.public_id: m
        for m in Message.objects.select_related("conversation", "attachment").filter(
            attachment__public_id__in=found
        )
    }
    taken: set[str] = set()
    left = []
    for item in pending:
        if item.attachment_id is None:
            left.append(item)
            continue
        attachment = found.get(item.attachment_id)
        original = used.get(item.attachment_id)
        if original is not None and _same_send(original, item):
            # A retry of a send that committed while this one waited for the lock: the
            # original, as `_without_retries` answers retries it can see.
            results[item.index].message = original
            continue
        error = None
        if attachment is None or attachment.uploader_id != item.membership.user_id:
            error = ApplicationError(ErrorCode.NOT_FOUND, "No such upload.", {"field": "attachment_id"})
        elif attachment.public_id in used or attachment.public_id in taken:
            error = ApplicationError(
                ErrorCode.CONFLICT,
                "This upload is already attached to a message.",
                {"field": "attachment_id"},
            )
        elif item.kind not in ("", Message.Kind.FILE, attachment.kind):
            error = ApplicationError(
                ErrorCode.INVALID,
                f"The upload is {attachment.kind}, not {item.kind}.",
                {"field": "kind", "attachment_kind": attachment.kind},
            )
        if error is not None:
            results[item.index].error = error
            continue
        taken.add(attachment.public_id)
        item.attachment, item.kind = attachment, item.kind or attachment.kind
        left.append(item)
    return left


@lru_cache(maxsize=65536)
def _direct_member_ids(conversation_id: str) -> tuple[str, ...]:
    # Members of a self or direct conversation never change (nobody leaves them), so this cache
    # never goes stale. A feature that lets people leave a direct chat must drop this cache.
    return tuple(
        Membership.objects.filter(conversation__public_id=conversation_id, left_at__isnull=True).values_list(
            "user__public_id", flat=True
        )
    )


@dataclass(frozen=True)
class SendRequest:
    """One message to post, as a transport received it (validated by message_send_many)."""

    user: User
    conversation_id: object
    content: object
    client_message_id: object = None
    kind: str | None = None  # the conversation kind the transport expects (self, direct, group)
    reply_to: object = None  # public id of a message of the same conversation to quote
    message_kind: object = None  # text, emoji, image, video, audio, file; default text or media
    attachment_id: object = None  # public id of the sender's unused upload (media kinds)
    origin: str | None = None  # the asking connection's tag, echoed in the event (events.py)


@dataclass
class SendResult:
    message: Message | None = None
    created: bool = False
    error: ApplicationError | None = None


@dataclass(slots=True)
class _Pending:
    """A send that passed validation so far, on its way to the database."""

    index: int  # of its request and result
    membership: Membership
    content: str
    client_message_id: str | None
    kind: str
    attachment_id: str | None
    reply_to: Message | None = None
    attachment: Attachment | None = None
    origin: str | None = None


def message_send(
    *,
    user: User,
    conversation_id: object,
    content: object,
    client_message_id: object = None,
    kind: str | None = None,
    reply_to: object = None,
    message_kind: object = None,
    attachment_id: object = None,
) -> tuple[Message, bool]:
    """Post a message into a conversation the user belongs to.

    Idempotent on `client_message_id`: a retry with the same id returns the original message and
    `created=False`, never a duplicate. Returns (message, created). Publishes `message.created`
    after commit to the members (direct and self chats) or to the conversation's bus group.
    `reply_to` names a message of the same conversation that this one quotes. A media message
    (`message_kind` image, video, audio or file) names the sender's upload in `attachment_id`
    and `content` is its caption, which may be empty.
    """
    request = SendRequest(
        user, conversation_id, content, client_message_id, kind, reply_to, message_kind, attachment_id
    )
    (result,) = message_send_many(requests=[request])
    if result.error is not None:
        raise result.error
    return result.message, result.created


def message_send_many(*, requests: list[SendRequest]) -> list[SendResult]:
    """`message_send` for many messages at once, with the same rules, in one transaction.

    The realtime layer gathers the sends that arrive while the previous batch is being written,
    so a busy server pays one commit and a handful of statements per batch instead of per
    message. Each request gets its own result: a refused one does not affect the others.
    """
    results = [SendResult() for _ in requests]
    valid: list[_Pending] = []
    for i, request in enumerate(requests):
        try:
            kind, attachment_id = _validate_kind(request.message_kind, request.attachment_id)
            content = _validate_body(kind, request.content)
            client_message_id = _validate_client_message_id(request.client_message_id)
        except ApplicationError as error:
            results[i].error = error
            continue
        pending_send = _Pending(
            i, None, content, client_message_id, kind, attachment_id, origin=request.origin
        )  # type: ignore[arg-type]
        valid.append(pending_send)
    memberships = _memberships_for(
        [(requests[p.index].user, requests[p.index].conversation_id) for p in valid]
    )
    pending: list[_Pending] = []
    for item in valid:
        request = requests[item.index]
        key = (request.user.pk, request.conversation_id) if is_public_id(request.conversation_id) else None
        membership = memberships.get(key) if key else None
        if membership is None or (request.kind is not None and membership.conversation.kind != request.kind):
            results[item.index].error = ApplicationError(ErrorCode.NOT_FOUND, "No such conversation.")
            continue
        item.membership = membership
        pending.append(item)
    pending = _reply_targets(requests, pending, results)
    pending = _without_retries(pending, results)
    if not pending:
        return results
    try:
        with transaction.atomic():
            # Inside the transaction: the attachments are locked until the messages that use
            # them are stored, so two sends cannot both take one.
            pending = _attachments_take(pending, results)
            messages = _messages_store(pending) if pending else []
    except IntegrityError:
        if len(pending) == 1:
            item = pending[0]
            original = (
                _message_by_client_id(
                    item.membership.conversation, item.membership.user, item.client_message_id
                )
                if item.client_message_id
                else None
            )
            if original is None:
                raise
            results[item.index].message = original
            _resolve_duplicates(results)
            return results
        # A concurrent retry of one of these (another process) won the race: go one by one.
        for item in pending:
            request = requests[item.index]
            retry = SendRequest(
                item.membership.user,
                item.membership.conversation.public_id,
                request.content,
                item.client_message_id,
                reply_to=request.reply_to,
                message_kind=request.message_kind,
                attachment_id=request.attachment_id,
                origin=request.origin,
            )
            (results[item.index],) = message_send_many(requests=[retry])
        _resolve_duplicates(results)
        return results
    for item, message in zip(pending, messages, strict=True):
        results[item.index].message, results[item.index].created = message, True
    _resolve_duplicates(results)
    return results


def _memberships_for(pairs: list[tuple[User, object]]) -> dict[tuple[int, object], Membership]:
    """Current memberships for (user, conversation public id) pairs, in one query."""
    users = {user.pk: user for user, conversation_id in pairs if is_public_id(conversation_id)}
    conversation_ids = {conversation_id for _user, conversation_id in pairs if is_public_id(conversation_id)}
    if not users:
        return {}
    rows = Membership.objects.select_related("conversation").filter(
        user_id__in=users, conversation__public_id__in=conversation_ids, left_at__isnull=True
    )
    found = {}
    for membership in rows:
        membership.user = users[membership.user_id]
        found[(membership.user_id, membership.conversation.public_id)] = membership
    return found


def _without_retries(pending: list[_Pending], results: list[SendResult]) -> list[_Pending]:
    """Answer retries (a client message id already stored, or repeated within the batch) with
    the original; return what is left to store."""
    keyed = [p for p in pending if p.client_message_id is not None]
    if not keyed:
        return pending
    stored = Message.objects.select_related("conversation", "attachment").filter(
        conversation_id__in={p.membership.conversation_id for p in keyed},
        client_message_id__in={p.client_message_id for p in keyed},
    )
    originals = {(msg.conversation_id, msg.sender_id, msg.client_message_id): msg for msg in stored}
    first_in_batch: dict[tuple, int] = {}
    left = []
    for item in pending:
        cid = item.client_message_id
        key = (item.membership.conversation_id, item.membership.user_id, cid)
        if cid is not None and key in originals:
            results[item.index].message = originals[key]
        elif cid is not None and key in first_in_batch:
            results[item.index].message = first_in_batch[key]  # resolved to the stored message later
        else:
            if cid is not None:
                first_in_batch[key] = item.index
            left.append(item)
    return left


def _resolve_duplicates(results: list[SendResult]) -> None:
    for result in results:
        if isinstance(result.message, int):  # index of the first copy within the batch
            first = results[result.message]
            result.message, result.error = first.message, first.error  # refused alike


def _message_by_client_id(conversation: Conversation, user: User, client_message_id: str) -> Message | None:
    return (
        Message.objects.filter(conversation=conversation, sender=user, client_message_id=client_message_id)
        .select_related("conversation", "attachment")
        .first()
    )


def _messages_store(pending: list[_Pending]) -> list[Message]:
    """Inside a transaction: take sequence numbers for every conversation of the batch with one
    statement, insert every message with one statement, move the senders' read pointers with
    one statement, and publish the events on commit."""
    now = timezone.now()
    counts: dict[int, int] = {}
    for item in pending:
        counts[item.membership.conversation_id] = counts.get(item.membership.conversation_id, 0) + 1
    last = _take_seqs(counts, now)
    next_seq = {pk: last[pk][0] - count + 1 for pk, count in counts.items()}
    next_rev = {pk: last[pk][1] - count + 1 for pk, count in counts.items()}
    messages, pointers = [], {}
    for item in pending:
        membership = item.membership
        conversation = membership.conversation
        seq, rev = next_seq[conversation.pk], next_rev[conversation.pk]
        next_seq[conversation.pk] += 1
        next_rev[conversation.pk] += 1
        conversation.last_seq, conversation.last_message_at = max(conversation.last_seq, seq), now
        conversation.last_rev = max(conversation.last_rev, rev)
        messages.append(
            Message(
                conversation=conversation,
                seq=seq,
                rev=rev,
                sender=membership.user,
                kind=item.kind,
                content=item.content,
                client_message_id=item.client_message_id,
                created_at=now,
                reply_to=item.reply_to,
                attachment=item.attachment,
            )
        )
        pointers[membership.pk] = seq  # writing a message means having read up to it
    Message.objects.bulk_create(messages)
    _advance_read_pointers(pointers)
    publish_many_on_commit(
        [
            _message_event(m.conversation, m, m.sender, item.origin)
            for m, item in zip(messages, pending, strict=True)
        ]
    )
    return messages


def _take_seqs(counts: dict[int, int], now) -> dict[int, tuple[int, int]]:
    """Bump each conversation's allocators by its count; returns conversation pk -> (new
    last_seq, new last_rev).

    One UPDATE ... RETURNING, which also locks the rows until commit, so concurrent senders
    queue here and numbers stay gapless. A new message is a change too, so `last_rev` moves by
    the same count in the same statement. `last_message_at` only moves forward.
    """
    table = connection.ops.quote_name(Conversation._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    ids = sorted(counts)
    moved_at = "CASE WHEN last_message_at > %s THEN last_message_at ELSE %s END"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two array parameters: the statement text is the same for every batch size, so
            # the driver does not re-parse a long CASE list each time.
            cursor.execute(
                f"UPDATE {table} AS c SET last_seq = c.last_seq + v.n, last_rev = c.last_rev + v.n, "  # noqa: S608
                f"last_message_at = {moved_at.replace('last_message_at', 'c.last_message_at')} "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, n) WHERE c.id = v.id "
                "RETURNING c.id, c.last_seq, c.last_rev",
                [stamp, stamp, ids, [counts[pk] for pk in ids]],
            )
        else:
            cases = "CASE id " + " ".join("WHEN %s THEN %s" for _ in ids) + " END"
            pairs = [v for pk in ids for v in (pk, counts[pk])]
            cursor.execute(
                f"UPDATE {table} SET last_seq = last_seq + {cases}, last_rev = last_rev + {cases}, "  # noqa: S608
                f"last_message_at = {moved_at} "
                f"WHERE id IN ({', '.join(['%s'] * len(ids))}) RETURNING id, last_seq, last_rev",
                [*pairs, *pairs, stamp, stamp, *ids],
            )
        return {pk: (last_seq, last_rev) for pk, last_seq, last_rev in cursor.fetchall()}


def _take_rev(conversation: Conversation) -> int:
    """Inside a transaction: the conversation's next revision, for a change to one of its
    messages (edit, delete, hide, reaction). Locks the conversation row until commit, as a send
    does, so revisions stay gapless and in commit order per conversation."""
    table = connection.ops.quote_name(Conversation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_rev = last_rev + 1 WHERE id = %s RETURNING last_rev",  # noqa: S608
            [conversation.pk],
        )
        (rev,) = cursor.fetchone()
    conversation.last_rev = rev
    return rev


def _advance_read_pointers(pointers: dict[int, int]) -> None:
    """Move memberships' read pointers forward (never backwards), one statement."""
    table = connection.ops.quote_name(Membership._meta.db_table)
    ids = sorted(pointers)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS m SET last_read_seq = v.seq "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, seq) "
                "WHERE m.id = v.id AND m.last_read_seq < v.seq",
                [ids, [pointers[pk] for pk in ids]],
            )
        else:
            cases = "CASE id " + " ".join("WHEN %s THEN %s" for _ in ids) + " END"
            params = [v for pk in ids for v in (pk, pointers[pk])]
            cursor.execute(
                f"UPDATE {table} SET last_read_seq = {cases} "  # noqa: S608
                f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND last_read_seq < {cases}",
                [*params, *ids, *params],
            )


def _message_event(
    conversation: Conversation, message: Message, sender: User | None, origin: str | None = None
) -> PublishItem:
    event = events.message_created(conversation=conversation, message=message, sender=sender, origin=origin)
    if conversation.kind == Conversation.Kind.GROUP:
        return PublishItem(event, conversation_ids=(conversation.public_id,))
    return PublishItem(event, user_ids=_direct_member_ids(conversation.public_id))


def _message_store(
    conversation: Conversation, sender: User | None, kind: str, content: str, client_message_id: str | None
) -> Message:
    """Take the next seq, store one message, publish it on commit. Inside a transaction."""
    now = timezone.now()
    seq, rev = _take_seqs({conversation.pk: 1}, now)[conversation.pk]
    conversation.last_seq, conversation.last_rev, conversation.last_message_at = seq, rev, now
    message = Message.objects.create(
        conversation=conversation,
        seq=seq,
        rev=rev,
        sender=sender,
        kind=kind,
        content=content,
        client_message_id=client_message_id,
        created_at=now,
    )
    publish_many_on_commit([_message_event(conversation, message, sender)])
    return message


def system_message_post(*, conversation: Conversation, actor: User | None, text: str) -> Message:
    """Record a fact (a membership change, a rename) in a conversation's history, so members
    who were offline see what happened. Call inside the transaction that made the change."""
    message = _message_store(conversation, actor, Message.Kind.SYSTEM, text, None)
    if actor is not None:  # the one who caused it has seen it: it is not unread for them
        Membership.objects.filter(
            conversation=conversation, user=actor, left_at__isnull=True, last_read_seq__lt=message.seq
        ).update(last_read_seq=message.seq)
    return message


def self_message_send(
    *, user: User, content: object, client_message_id: object = None
) -> tuple[Message, bool]:
    """Post into the user's notes-to-self conversation (created if missing)."""
    conversation = self_conversation_ensure(user=user)
    return message_send(
        user=user,
        conversation_id=conversation.public_id,
        content=content,
        client_message_id=client_message_id,
        kind=Conversation.Kind.SELF,
    )


def _read_target(
    conversation: Conversation, up_to_seq: object, message_ids: object, last_message_id: object
) -> int:
    """The seq a read (or delivery) report names, in any of its forms: a seq ("up to this
    message"), a list of message ids (their newest counts: the pointer covers everything
    before it), or the last message's id. None of them: the newest message."""
    given = [
        name
        for name, value in (
            ("seq", up_to_seq),
            ("message_ids", message_ids),
            ("last_message_id", last_message_id),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ApplicationError(
            ErrorCode.INVALID,
            "Name the messages one way: seq, message_ids or last_message_id.",
            {"field": given[1]},
        )
    if message_ids is not None or last_message_id is not None:
        field = "message_ids" if message_ids is not None else "last_message_id"
        ids = message_ids if message_ids is not None else [last_message_id]
        maximum = settings.CHAT["HISTORY_MAX_PAGE_SIZE"]  # no more than a page of history shows
        if (
            not isinstance(ids, list)
            or not ids
            or len(ids) > maximum
            or not all(isinstance(i, str) for i in ids)
        ):
            raise ApplicationError(
                ErrorCode.INVALID, f"{field} must name 1 to {maximum} messages by id.", {"field": field}
            )
        seqs = message_seqs(conversation=conversation, message_ids=ids)
        if len(seqs) != len(set(ids)):
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": field})
        return max(seqs.values())
    if up_to_seq is None:
        return conversation.last_seq
    if isinstance(up_to_seq, bool) or not isinstance(up_to_seq, int) or up_to_seq < 0:
        raise ApplicationError(ErrorCode.INVALID, "seq must be a non-negative integer.", {"field": "seq"})
    return min(up_to_seq, conversation.last_seq)


def conversation_mark_read(
    *,
    user: User,
    conversation_id: object,
    up_to_seq: object = None,
    kind: str | None = None,
    message_ids: object = None,
    last_message_id: object = None,
) -> tuple[Conversation, int]:
    """Move the caller's read pointer forward to `up_to_seq` (default: the newest message), or
    to the newest of `message_ids`, or to `last_message_id` (the forms other clients use).

    The pointer never moves backwards and never past the newest message: one pointer per
    member, never a row per message and reader. Returns (conversation, pointer). On commit:
    - `conversation.unread` (the reader's unread count here and in total) to the reader's own
      connections, so every device of theirs clears the count;
    - `conversation.read` to the members (also when nothing changed, as ExpressChat clients
      expect an acknowledgement), unless the reader turned read receipts off; each protocol
      decides who renders it (ExpressChat: the other members only).
    """
    membership = membership_get(user=user, conversation_id=conversation_id, kind=kind)
    conversation = membership.conversation
    target = _read_target(conversation, up_to_seq, message_ids, last_message_id)
    receipts = user_receipts_enabled(user)
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk, last_read_seq__lt=target).update(last_read_seq=target)
        # Read back: a concurrent send by the same user may have moved it further.
        pointer, last_seq = (
            Membership.objects.filter(pk=membership.pk)
            .values_list("last_read_seq", "conversation__last_seq")
            .get()
        )
        publish_on_commit(
            events.conversation_unread(
                conversation=conversation,
                reader=user,
                seq=pointer,
                unread=max(last_seq - pointer, 0),
                unread_total=unread_total(user=user),
            ),
            user_ids=[user.public_id],
        )
        if receipts:
            event = events.conversation_read(conversation=conversation, reader=user, seq=pointer)
            if conversation.kind == Conversation.Kind.GROUP:
                publish_on_commit(event, conversation_ids=[conversation.public_id])
            else:
                publish_on_commit(event, user_ids=_direct_member_ids(conversation.public_id))
    return conversation, pointer


def conversation_mark_delivered(
    *, user: User, conversation_id: object, up_to_seq: object = None, kind: str | None = None
) -> tuple[Conversation, int]:
    """Record that one of the caller's devices received the conversation's messages up to
    `up_to_seq` (default: the newest). Delivery reports are opt-in per client.

    The pointer never moves backwards or past the newest message. When it moves past messages
    the caller had neither received nor read before, `conversation.delivered` goes on commit to
    the senders of those messages only (one query finds them), unless the caller turned
    receipts off. Returns (conversation, pointer).
    """
    membership = membership_get(user=user, conversation_id=conversation_id, kind=kind)
    conversation = membership.conversation
    target = _read_target(conversation, up_to_seq, None, None)
    with transaction.atomic():
        delivered, read = (
            Membership.objects.select_for_update()
            .filter(pk=membership.pk)
            .values_list("last_delivered_seq", "last_read_seq")
            .get()
        )
        if delivered >= target:
            return conversation, delivered
        Membership.objects.filter(pk=membership.pk).update(last_delivered_seq=target)
        covered = max(delivered, read)  # read messages were acknowledged by the read receipt
        if covered < target and user_receipts_enabled(user):
            senders = list(
                Message.objects.filter(
                    conversation=conversation, seq__gt=covered, seq__lte=target, sender__isnull=False
                )
                .exclude(sender=user)
                .values_list("sender__public_id", flat=True)
                .distinct()
            )
            if senders:
                publish_on_commit(
                    events.conversation_delivered(conversation=conversation, recipient=user, seq=target),
                    user_ids=senders,
                )
    return conversation, target


# --- moderation ----------------------------------------------------------------------------

MODERATE_PERMISSION = "messaging.moderate_message"
MODERATE_HIDE = "hide"
MODERATE_DELETE = "delete"


def message_moderate(*, moderator: User, message_id: object, action: str, reason: object) -> Message:
    """Hide or delete a message as a moderator, record it, and tell the members live.

    Hide keeps the text (moderators still read it in the admin) but it is never served again;
    delete is a tombstone: the text is erased for good and `deleted_at` set. Either way the
    message keeps its id and seq, so clients see no gap. Only active staff holding
    `messaging.moderate_message` (or superusers) may do it, and a reason is required.
    Publishes `message.hidden` / `message.deleted` on commit to the conversation's members,
    chosen as `_message_store` chooses them.
    """
    moderation.moderator_check(moderator=moderator, permission=MODERATE_PERMISSION)
    reason = moderation.moderation_reason_clean(reason)
    if action not in (MODERATE_HIDE, MODERATE_DELETE):
        raise ApplicationError(ErrorCode.INVALID, 'action must be "hide" or "delete".', {"field": "action"})
    if not is_public_id(message_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "message_id"})
    with transaction.atomic():
        message = (
            # no_key: see `message_get_for_member` (a concurrent reply to it must not wait).
            Message.objects.select_for_update(of=("self",), no_key=True)
            .select_related("conversation", "sender")
            .filter(public_id=message_id)
            .first()
        )
        if message is None:
            raise ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "message_id"})
        if message.deleted_at is not None:
            raise ApplicationError(ErrorCode.CONFLICT, "The message is already deleted.")
        now = timezone.now()
        if action == MODERATE_HIDE:
            if message.hidden_at is not None:
                raise ApplicationError(ErrorCode.CONFLICT, "The message is already hidden.")
            message.hidden_at, message.rev = now, _take_rev(message.conversation)
            message.save(update_fields=["hidden_at", "rev"])
            event = events.message_hidden(conversation=message.conversation, message=message)
        else:
            message.content, message.deleted_at = "", now
            message.rev = _take_rev(message.conversation)
            message.save(update_fields=["content", "deleted_at", "rev"])
            _erase_extras(message)  # earlier texts and reactions go with the text
            event = events.message_deleted(conversation=message.conversation, message=message)
        conversation = message.conversation
        moderation.moderation_action_record(
            moderator=moderator,
            action=ModerationAction.Action.MESSAGE_HIDE
            if action == MODERATE_HIDE
            else ModerationAction.Action.MESSAGE_DELETE,
            target_type=ModerationAction.TargetType.MESSAGE,
            target_id=message.public_id,
            reason=reason,
            extra={
                "conversation_id": conversation.public_id,
                "conversation_kind": conversation.kind,
                "seq": message.seq,
                "sender_id": message.sender.public_id if message.sender else None,
            },
        )
        if conversation.kind == Conversation.Kind.GROUP:
            publish_on_commit(event, conversation_ids=[conversation.public_id])
        else:
            publish_on_commit(event, user_ids=_direct_member_ids(conversation.public_id))
    return message


# --- replies, edits, deletes and reactions -------------------------------------------------

REACTION_EMOJI_MAX = 32  # the column's length


def _reply_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such message.", {"field": "reply_to"})


def _reply_targets(
    requests: list[SendRequest], pending: list[_Pending], results: list[SendResult]
) -> list[_Pending]:
    """Find the messages the batch's replies quote: one query, and none when nothing is a reply.

    A target must be a message of the reply's own conversation; a deleted one is fine (the quote
    shows the tombstone). Refused requests get not_found, like an unknown id, and leave the batch.
    Returns the pending sends left, with `reply_to` set.
    """
    wanted = {p.index: requests[p.index].reply_to for p in pending if requests[p.index].reply_to is not None}
    if not wanted:
        return pending
    ids = {value for value in wanted.values() if is_public_id(value)}
    found = {m.public_id: m for m in Message.objects.select_related("sender").filter(public_id__in=ids)}
    left = []
    for item in pending:
        if item.index in wanted:
            target = found.get(wanted[item.index]) if is_public_id(wanted[item.index]) else None
            if target is None or target.conversation_id != item.membership.conversation_id:
                results[item.index].error = _reply_not_found()
                continue
            item.reply_to = target
        left.append(item)
    return left


def _publish_to_members(conversation: Conversation, event: dict) -> None:
    """On commit, to the conversation's bus group (groups) or its members (direct, self), as
    `_message_event` chooses them."""
    if conversation.kind == Conversation.Kind.GROUP:
        publish_on_commit(event, conversation_ids=[conversation.public_id])
    else:
        publish_on_commit(event, user_ids=_direct_member_ids(conversation.public_id))


def _refuse_system(message: Message, verb: str) -> None:
    if message.kind == Message.Kind.SYSTEM:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, f"System messages cannot be {verb}.")


def _refuse_removed(message: Message) -> None:
    if message.deleted_at is not None:
        raise ApplicationError(ErrorCode.CONFLICT, "The message was deleted.")
    if message.hidden_at is not None:
        raise ApplicationError(ErrorCode.CONFLICT, "A moderator hid the message.")


def _erase_extras(message: Message) -> None:
    """A deleted message keeps nothing: not its earlier texts, not its reactions, not its file
    (erased from storage once the delete committed)."""
    MessageEdit.objects.filter(message=message).delete()
    Reaction.objects.filter(message=message).delete()
    if message.attachment is not None:
        attachment_erase(attachment=message.attachment)


def message_edit(
    *,
    user: User,
    message_id: object,
    content: object,
    conversation_id: object = None,
    origin: str | None = None,
) -> Message:
    """Change the text (or a media message's caption) of one's own message; the text it
    replaces goes to its edit history.

    Only the sender, not system messages, not once deleted or hidden by a
    moderator. Content follows the rules of a send. Sending the same text again changes nothing
    (no history row, no event): a retried edit is harmless. `conversation_id`, when given, must
    be the message's conversation. Publishes `message.edited` on commit to the members.
    """
    with transaction.atomic():
        _membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        _refuse_system(message, "edited")
        if message.sender_id != user.pk:
            raise ApplicationError(ErrorCode.PERMISSION_DENIED, "Only the sender can edit a message.")
        _refuse_removed(message)
        if content is None:  # an empty caption is "", never a missing field
            raise ApplicationError(ErrorCode.INVALID, "Content must be a string.", {"field": "content"})
        content = _validate_body(message.kind, content)  # a caption may become empty, text not
        if content == message.content:
            return message
        now = timezone.now()
        MessageEdit.objects.create(message=message, content=message.content, edited_at=now, editor=user)
        message.content, message.edited_at = content, now
        message.rev = _take_rev(message.conversation)
        message.save(update_fields=["content", "edited_at", "rev"])
        _publish_to_members(
            message.conversation,
            events.message_edited(
                conversation=message.conversation, message=message, editor=user, origin=origin
            ),
        )
    logger.info("message edited: message=%s user=%s", message.public_id, user.public_id)
    return message


def _may_delete_others(membership: Membership) -> bool:
    """Group owners and admins delete other members' messages; in direct and self chats nobody
    deletes what someone else wrote. (Moderators use `message_moderate`.)"""
    if membership.conversation.kind != Conversation.Kind.GROUP:
        return False
    return membership.role in (Membership.Role.OWNER, Membership.Role.ADMIN)


def message_delete(*, user: User, message_id: object, conversation_id: object = None) -> Message:
    """Delete a message, leaving a tombstone: the text, its edit history and its reactions are
    erased; id and seq stay, so no client sees a gap.

    The sender may, and in groups the owner and admins may delete anyone's message. System
    messages are facts and stay. A message a moderator hid stays as the moderator left it (its
    text is their evidence). Deleting twice is a conflict. Publishes `message.deleted` on commit
    to the members, the event moderation publishes, so clients handle one shape.
    """
    with transaction.atomic():
        membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        _refuse_system(message, "deleted")
        if message.sender_id != user.pk and not _may_delete_others(membership):
            raise ApplicationError(
                ErrorCode.PERMISSION_DENIED, "Only the sender or a group admin can delete this message."
            )
        _refuse_removed(message)
        message.content, message.deleted_at = "", timezone.now()
        message.rev = _take_rev(message.conversation)
        message.save(update_fields=["content", "deleted_at", "rev"])
        _erase_extras(message)
        _publish_to_members(
            message.conversation, events.message_deleted(conversation=message.conversation, message=message)
        )
    logger.info("message deleted: message=%s user=%s", message.public_id, user.public_id)
    return message


def _stamp_rev(message: Message) -> None:
    """A change that is not a column of the message (a reaction) still moves its revision, so
    a resync serves the message again with its current reactions."""
    message.rev = _take_rev(message.conversation)
    Message.objects.filter(pk=message.pk).update(rev=message.rev)


def _validate_emoji(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > REACTION_EMOJI_MAX
        or not is_storable(value)
        or any(c.isspace() for c in value)
    ):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"emoji must be 1 to {REACTION_EMOJI_MAX} characters without spaces.",
            {"field": "emoji"},
        )
    return value


def reaction_add(
    *, user: User, message_id: object, emoji: object, conversation_id: object = None
) -> tuple[Message, int, bool]:
    """Put an emoji on a message of a conversation the user is in. Idempotent: adding one the
    user already put there changes nothing and publishes nothing.

    At most CHAT MAX_REACTIONS_PER_USER distinct emoji per user per message; none on deleted or
    hidden messages. Returns (message, how many members have this emoji on it, added). Publishes
    `reaction.added` on commit to the members.
    """
    emoji = _validate_emoji(emoji)
    with transaction.atomic():
        # The row lock orders the reactions of one message: counts and the limit stay exact.
        _membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        _refuse_removed(message)
        mine = set(Reaction.objects.filter(message=message, user=user).values_list("emoji", flat=True))
        if emoji in mine:
            return message, reaction_count(message=message, emoji=emoji), False
        maximum = settings.CHAT["MAX_REACTIONS_PER_USER"]
        if len(mine) >= maximum:
            raise ApplicationError(
                ErrorCode.INVALID,
                f"At most {maximum} different reactions per message.",
                {"field": "emoji", "max_reactions": maximum},
            )
        Reaction.objects.create(message=message, user=user, emoji=emoji)
        _stamp_rev(message)
        count = reaction_count(message=message, emoji=emoji)
        _publish_to_members(
            message.conversation,
            events.reaction_changed(
                conversation=message.conversation,
                message=message,
                user=user,
                emoji=emoji,
                count=count,
                added=True,
            ),
        )
    return message, count, True


def reaction_remove(
    *, user: User, message_id: object, emoji: object, conversation_id: object = None
) -> tuple[Message, int, bool]:
    """Take one's emoji off a message. Idempotent: removing one that is not there changes
    nothing and publishes nothing. Returns (message, how many members still have this emoji on
    it, removed). Publishes `reaction.removed` on commit to the members."""
    emoji = _validate_emoji(emoji)
    with transaction.atomic():
        _membership, message = message_get_for_member(
            user=user, message_id=message_id, conversation_id=conversation_id, for_update=True
        )
        removed, _per_model = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
        count = reaction_count(message=message, emoji=emoji)
        if removed:
            _stamp_rev(message)
            _publish_to_members(
                message.conversation,
                events.reaction_changed(
                    conversation=message.conversation,
                    message=message,
                    user=user,
                    emoji=emoji,
                    count=count,
                    added=False,
                ),
            )
    return message, count, bool(removed)
