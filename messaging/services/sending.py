"""Sending messages: `message_send` and `message_send_many` (the one write path of every
transport, batched for the realtime layer), the steps a batch goes through (memberships,
replies, retries, uploads, storage and publishing), system messages and notes to self."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.utils import timezone

from accounts.models import User
from chatproject.bus import PublishItem, publish_many_on_commit
from chatproject.core import rows
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id, new_message_id

from .. import events
from ..models import Attachment, Conversation, Membership, Message
from .audience import Audience, conversation_audience, conversation_audiences_read, publish_item
from .conversations import self_conversation_ensure
from .storage import (
    SEND_GIVEN,
    Call,
    Publish,
    SendQuery,
    Steps,
    _memberships_and_stored,
    _messages_write,
    _sends_write,
    _take_seqs,
    message_insert_fields,
    run_send_query,
)
from .validation import _validate_body, _validate_client_message_id, _validate_kind

# The columns `_messages_store` writes, checked against the model once at import: a field added
# to Message must be added there too (or the check fails loudly, not the insert silently).
_MESSAGE_ATTNAMES = (
    "id",
    "public_id",
    "conversation_id",
    "seq",
    "rev",
    "sender_id",
    "kind",
    "content",
    "client_message_id",
    "created_at",
    "edited_at",
    "deleted_at",
    "hidden_at",
    "reply_to_id",
    "attachment_id",
)
if (
    _MESSAGE_ATTNAMES[1:] != tuple(f.attname for f in message_insert_fields())
    or Message._meta.pk.attname != _MESSAGE_ATTNAMES[0]
):
    raise ImproperlyConfigured("messaging.services.sending._MESSAGE_ATTNAMES no longer matches Message")
_CONVERSATION, _SENDER, _REPLY_TO, _ATTACHMENT = (
    Message._meta.get_field(name) for name in ("conversation", "sender", "reply_to", "attachment")
)
_USER = Membership._meta.get_field("user")


def _same_send(message: Message, item: _Pending) -> bool:
    return (
        item.client_message_id is not None
        and message.client_message_id == item.client_message_id
        and message.sender_id == item.membership.user_id
        and message.conversation_id == item.membership.conversation_id
    )


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
    A blocked conversation (`conversation_block`) refuses every send with permission_denied.

    `send_steps` run by the sync driver (`drive`), on this thread's Django connection.
    """
    return drive(send_steps(requests))


class Stepping:
    """A driver's walk through a send batch's steps: `next()` gives the next step (None once they
    returned: their result is `result`), after `answered(value)` or `failed(error)` for the last
    one; an error is raised inside the steps, which decide (a lost race is handled there)."""

    def __init__(self, steps: Steps) -> None:
        self._steps = steps
        self._answer: Any = None
        self._error: BaseException | None = None
        self.result: Any = None

    def next(self) -> SendQuery | Call | Publish | None:
        answer, error, self._answer, self._error = self._answer, self._error, None, None
        try:
            return self._steps.throw(error) if error is not None else self._steps.send(answer)
        except StopIteration as done:
            self.result = done.value
            return None

    def answered(self, value: Any) -> None:
        self._answer = value

    def failed(self, error: BaseException) -> None:
        self._error = error


def drive(steps: Steps) -> Any:
    """The sync driver of a send batch's steps: each `SendQuery` on this thread's Django
    connection, each `Call` in place, each `Publish` on commit. Returns what they return."""
    walk = Stepping(steps)
    while (step := walk.next()) is not None:
        try:
            if isinstance(step, SendQuery):
                walk.answered(run_send_query(step))
            elif isinstance(step, Call):
                walk.answered(step.fn(*step.args))
            else:
                publish_many_on_commit(step.items)
        except Exception as exc:  # noqa: BLE001 - raised inside the steps, which decide
            walk.failed(exc)
    return walk.result


def send_steps(requests: list[SendRequest], *, autocommit: bool | None = None) -> Steps:
    """`message_send_many` as steps (`SendQuery`, `Call`, `Publish`, messaging/services/
    storage.py) for a driver to run, and its results as their return value: the one write path
    of messages, whether this thread's Django connection runs its statements (`drive`) or the
    realtime layer's event-loop driver (gateway/writer.py). Between the steps it is plain
    Python. `autocommit`: whether the driver's connection is outside any transaction (the
    event-loop driver's always is); None: ask this thread's connection.

    A batch of plain sends outside a transaction on PostgreSQL is stored by one statement
    (`_in_one_statement`); a batch it did not store, and every other batch, goes through the
    two steps: the probe (memberships and earlier client message ids), then the write
    (`_in_two_steps`)."""
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
    if _in_one_statement(requests, valid, autocommit):
        try:
            valid = yield from _stored_in_one_statement(requests, valid, results)
        except IntegrityError:
            # A concurrent send with one of these client message ids (another process, a
            # retry) committed after the statement began: nothing was stored, and the two steps
            # find the original.
            pass
    if valid:
        yield from _in_two_steps(requests, valid, results, autocommit)
    _resolve_duplicates(results)
    return results


def _in_one_statement(requests: list[SendRequest], valid: list[_Pending], autocommit: bool | None) -> bool:
    """Whether the batch goes to the one-statement send first (`storage._sends_write_sql`):
    CHAT SEND_ONE_STATEMENT on, a batch that can go without BEGIN and COMMIT (`_one_round_trip`:
    PostgreSQL, outside an atomic block, no upload to lock), and plain sends only: no reply to
    look up, a conversation public id, and no client message id given twice in the batch for
    the same conversation and sender (the two steps answer the repeat with the first).

    The whole batch or none of it: the statement stores every send or none, so a batch is
    still one transaction, stored and published in the order it was queued, and a batch the
    batcher tries again (a lost connection) has stored nothing. A send it cannot take sends
    the whole batch through the two steps."""
    if not valid or not settings.CHAT["SEND_ONE_STATEMENT"] or not _one_round_trip(valid, autocommit):
        return False
    keys = set()
    for item in valid:
        request = requests[item.index]
        if request.reply_to is not None or not is_public_id(request.conversation_id):
            return False
        if item.client_message_id is not None:
            key = (request.user.pk, request.conversation_id, item.client_message_id)
            if key in keys:
                return False
            keys.add(key)
    return True


def _stored_in_one_statement(
    requests: list[SendRequest], valid: list[_Pending], results: list[SendResult]
) -> Steps:
    """Steps that store the batch in one statement with its members read (`storage.
    _sends_write`), fill the results and publish the events, as `_messages_store` does; returns
    the sends left for the two steps: all of them when the statement stored none (one of them
    is refused, or a retry, and the two steps tell which), none otherwise."""
    now = timezone.now()
    db = connections[DEFAULT_DB_ALIAS]
    stamp = db.ops.adapt_datetimefield_value(now)
    ids = [new_message_id() for _ in valid]
    batch = []
    for public_id, item in zip(ids, valid, strict=True):
        request = requests[item.index]
        given = {
            "public_id": public_id,
            "sender": request.user.pk,
            "conversation": request.conversation_id,
            "expected_kind": request.kind,
            "kind": item.kind,
            "content": item.content,
            "client_message_id": item.client_message_id,
        }
        batch.append([given[name] for name in SEND_GIVEN])
    conversation_ids = sorted({requests[item.index].conversation_id for item in valid})
    stored, member_rows = yield from _sends_write(batch, stamp, conversation_ids)
    if not stored:  # one of them is refused or a retry: the two steps tell which
        return valid
    pending, values, written = [], [], []
    for at, pk, seq, rev, membership in stored:
        item = valid[at]
        _USER.set_cached_value(membership, requests[item.index].user)
        item.membership = membership
        pending.append(item)
        values.append(_message_row(item, ids[at], stamp))
        written.append((pk, seq, rev))
    read = conversation_audiences_read(item.membership.conversation for item in pending)
    messages = _messages_made(pending, values, written, now, db)
    yield _published(messages, pending, read.result_of(member_rows))
    for item, message in zip(pending, messages, strict=True):
        results[item.index].message, results[item.index].created = message, True
    # All of them, unless a conversation went away (deleted) while the statement waited for
    # its lock: nothing more may be written for the batch once it committed (the batcher would
    # try the whole of it again if that failed), and such a send has no conversation left.
    done = {at for at, *_rest in stored}
    for at, item in enumerate(valid):
        if at not in done:
            results[item.index].error = ApplicationError(ErrorCode.NOT_FOUND, "No such conversation.")
    return []


def _in_two_steps(
    requests: list[SendRequest], valid: list[_Pending], results: list[SendResult], autocommit: bool | None
) -> Steps:
    """Steps that answer the `valid` sends: the probe (`_memberships_for`), replies, retries,
    blocks and uploads in Python or through the ORM, then the write (`_messages_store`)."""
    memberships, stored = yield from _memberships_for(
        [(requests[p.index].user, requests[p.index].conversation_id, p.client_message_id) for p in valid]
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
    if any(requests[item.index].reply_to is not None for item in pending):
        pending = yield Call(_reply_targets, (requests, pending, results))
    # The originals of retries are read through the ORM; within-batch repeats need no query.
    keyed = {(p.membership.conversation_id, p.membership.user_id, p.client_message_id) for p in pending}
    if any(key in keyed for key in stored):
        pending = yield Call(_without_retries, (pending, results, stored))
    else:
        pending = _without_retries(pending, results, {})
    # After the retries: a message stored before the block is still answered as sent.
    pending = _not_blocked(pending, results)
    if not pending:
        return
    try:
        with nullcontext() if _one_round_trip(pending, autocommit) else transaction.atomic():
            # Inside the transaction: the attachments are locked until the messages that use
            # them are stored, so two sends cannot both take one.
            if any(item.attachment_id is not None for item in pending):
                pending = yield Call(_attachments_take, (pending, results))
            messages = (yield from _messages_store(pending)) if pending else []
    except IntegrityError:
        if len(pending) == 1:
            item = pending[0]
            original = (
                (
                    yield Call(
                        _message_by_client_id,
                        (item.membership.conversation, item.membership.user, item.client_message_id),
                    )
                )
                if item.client_message_id
                else None
            )
            if original is None:
                raise
            results[item.index].message = original
            return
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
            (results[item.index],) = yield from send_steps([retry], autocommit=autocommit)
        return
    for item, message in zip(pending, messages, strict=True):
        results[item.index].message, results[item.index].created = message, True


def _one_round_trip(pending: list[_Pending], autocommit: bool | None) -> bool:
    """Whether the batch's write can go without BEGIN and COMMIT: on PostgreSQL, outside any
    transaction (the realtime batcher's case), with no upload to lock first. Its write and
    members read are then one simple-protocol query, which PostgreSQL runs as one transaction
    (`_messages_write`): all of it is stored or none, and the events are published once the
    query has returned, that is after the commit. Two round trips of the batch's five, and the
    CPU around them, saved (issue 19). Anywhere else (a REST request inside ATOMIC_REQUESTS, a
    service that sends inside its own transaction, tests) the batch runs in an atomic block
    (a savepoint when nested), as before.

    Failure semantics: an error in the query (a constraint, the members read) stores nothing;
    the batch has committed once the query returns, so an error after it (building the
    events) fails a batch whose messages are stored, as a connection lost during COMMIT did
    before. Nothing is acked that was not committed; a retry with the same client message id
    is answered with the stored message.

    `autocommit`: the driver's word for its connection (`send_steps`); None: this thread's."""
    if autocommit is None:
        autocommit = connection.get_autocommit() and not connection.in_atomic_block
    return (
        connection.vendor == "postgresql"
        and autocommit
        and all(item.attachment_id is None for item in pending)
    )


def _memberships_for(
    keys: list[tuple[User, object, str | None]],
) -> Steps:
    """Steps that answer the current memberships for (user, conversation public id) pairs, and the messages already
    stored under the sends' client message ids (`_memberships_and_stored`: one query)."""
    users = {user.pk: user for user, conversation_id, _cid in keys if is_public_id(conversation_id)}
    if not users:
        return {}, {}
    memberships, stored = yield from _memberships_and_stored(
        [
            (user.pk, conversation_id, cid)
            for user, conversation_id, cid in keys
            if is_public_id(conversation_id)
        ]
    )
    found = {}
    for membership in memberships:
        _USER.set_cached_value(membership, users[membership.user_id])
        found[(membership.user_id, membership.conversation.public_id)] = membership
    return found, stored


def _not_blocked(pending: list[_Pending], results: list[SendResult]) -> list[_Pending]:
    """Refuse the sends into blocked conversations. `blocked_at` came with the membership's
    conversation row, so this costs no query."""
    left = []
    for item in pending:
        if item.membership.conversation.blocked_at is not None:
            results[item.index].error = ApplicationError(
                ErrorCode.PERMISSION_DENIED, "This conversation is blocked."
            )
            continue
        left.append(item)
    return left


def _without_retries(
    pending: list[_Pending], results: list[SendResult], stored: dict[tuple[int, int, str], int]
) -> list[_Pending]:
    """Answer retries (a client message id already stored, or repeated within the batch) with
    the original; return what is left to store. `stored`: the idempotency probe's answer
    (`_memberships_for`), (conversation pk, sender pk, client message id) -> message pk."""
    keyed = [p for p in pending if p.client_message_id is not None]
    if not keyed:
        return pending
    wanted = {(p.membership.conversation_id, p.membership.user_id, p.client_message_id) for p in keyed}
    stored = {key: pk for key, pk in stored.items() if key in wanted}
    originals = {}
    if stored:  # retries: read their originals as the answer
        by_pk = Message.objects.select_related("conversation", "attachment").in_bulk(stored.values())
        originals = {key: by_pk[pk] for key, pk in stored.items()}
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


def _messages_store(pending: list[_Pending]) -> Steps:
    """Steps that store the batch (`_messages_write`: seqs, messages and the senders' read pointers, one
    statement on PostgreSQL), read the members of its direct and self conversations right
    after it, in the same transaction (none when all are groups; on PostgreSQL in the write's
    round trip), and publish the events on commit. Inside a transaction, or on PostgreSQL in
    autocommit, where the write and the read are one transaction of their own."""
    now = timezone.now()
    db = connections[DEFAULT_DB_ALIAS]  # not the proxy: one thread-local lookup, not one per message
    stamp = db.ops.adapt_datetimefield_value(now)
    values = [_message_row(item, new_message_id(), stamp) for item in pending]
    read = conversation_audiences_read(item.membership.conversation for item in pending)
    stored, member_rows = yield from _messages_write(
        values, [item.membership.pk for item in pending], now, then=read.statement
    )
    messages = _messages_made(pending, values, stored, now, db)
    yield _published(messages, pending, read.result(member_rows))
    return messages


def _message_row(item: _Pending, public_id: str, stamp: Any) -> tuple:
    """The values of storage.message_insert_fields() for a send, in the model's field order."""
    return (
        public_id,
        item.membership.conversation_id,
        None,  # seq, taken by the write
        None,  # rev, likewise
        item.membership.user_id,
        item.kind,
        item.content,
        item.client_message_id,
        stamp,
        None,  # edited_at
        None,  # deleted_at
        None,  # hidden_at
        item.reply_to.pk if item.reply_to is not None else None,
        item.attachment.pk if item.attachment is not None else None,
    )


def _messages_made(
    pending: list[_Pending], values: list[tuple], stored: list[tuple[int, int, int]], now: Any, db: Any
) -> list[Message]:
    """The stored messages as instances (`stored`: pk, seq, rev per row of `values`), with the
    objects the batch already holds as their related objects; each conversation's allocators and
    last message time moved as the write moved them."""
    messages = []
    for row, (pk, seq, rev), item in zip(values, stored, pending, strict=True):
        conversation = item.membership.conversation
        conversation.last_seq, conversation.last_message_at = max(conversation.last_seq, seq), now
        conversation.last_rev = max(conversation.last_rev, rev)
        # As a QuerySet would make it (none of the related objects is read again).
        message = rows.made(Message, db.alias, (pk, row[0], row[1], seq, rev, *row[4:8], now, *row[9:]))
        for field, value in (
            (_CONVERSATION, conversation),
            (_SENDER, item.membership.user),
            (_REPLY_TO, item.reply_to),
            (_ATTACHMENT, item.attachment),
        ):
            if value is not None:
                field.set_cached_value(message, value)
        messages.append(message)
    return messages


def _published(messages: list[Message], pending: list[_Pending], audiences: dict[int, Audience]) -> Publish:
    return Publish(
        [
            _message_event(m.conversation, m, m.sender, audiences[m.conversation.pk], item.origin)
            for m, item in zip(messages, pending, strict=True)
        ]
    )


def _message_event(
    conversation: Conversation,
    message: Message,
    sender: User | None,
    audience: Audience,
    origin: str | None = None,
) -> PublishItem:
    event = events.message_created(conversation=conversation, message=message, sender=sender, origin=origin)
    return publish_item(event, audience)


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
    audience = conversation_audience(conversation)
    publish_many_on_commit([_message_event(conversation, message, sender, audience)])
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
