"""Reads of the private chat protocol: its rooms (the users' direct conversations) and their
messages, as plain data for `wire` to shape. Read-only; every function is sync (called through
`gateway.actions.call`) and does a fixed number of queries, whatever the number of rooms.

A room is *active* for a user (in their `activeChats`) once it has a message, or from the moment
they opened it (`init chat` creates it with them as creator): the original added a room to the
initiator's list at `init chat` and to the recipient's at the first message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from accounts import friends
from accounts.models import IdHandle, User
from accounts.selectors import users_visible
from messaging.models import Conversation, Membership, Message
from messaging.selectors import direct_conversation_find

# Unread entries listed per room: the client counts them for its badge (a badge of 100 says
# "a lot" well enough), and a room payload stays small however long a peer was away.
UNREAD_MAX = 100
# Messages `fetch messages` and `read messages` carry: the newest ones, oldest first.
MESSAGES_MAX = 200
DIRECT = Conversation.Kind.DIRECT


@dataclass(frozen=True)
class Party:
    id: str  # public id
    username: str


@dataclass(frozen=True)
class Line:
    """One message as the wire shows it."""

    id: str
    sender: Party | None
    recipient_id: str
    room_id: str
    text: str
    read: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Room:
    id: str
    participants: list[Party]  # the creator first, as the original's [initiator, friend]
    last: Line | None
    unread: list[tuple[str, Party]]  # (message id, its recipient), oldest first
    created_at: datetime
    updated_at: datetime


def party(user: User) -> Party:
    return Party(user.public_id, user.display_name)


def _text(message: Message) -> str:
    if message.deleted_at is not None or message.hidden_at is not None:
        return ""
    return message.content


def _rooms(conversations: list[Conversation]) -> list[Room]:
    """Rooms of these direct conversations: three queries in all."""
    if not conversations:
        return []
    members: dict[int, list[Membership]] = {c.pk: [] for c in conversations}
    for membership in (
        Membership.objects.filter(conversation__in=conversations, left_at__isnull=True)
        .select_related("user")
        .order_by("joined_at", "pk")
    ):
        members[membership.conversation_id].append(membership)
    # Each room's newest message and its unread window: seqs are gapless, so the last
    # UNREAD_MAX seqs past the lower read pointer hold every unread entry listed.
    window = Q(pk__in=[])
    for c in conversations:
        pointers = [m.last_read_seq for m in members[c.pk]] or [c.last_seq]
        low = max(min(pointers), c.last_seq - UNREAD_MAX)
        window |= Q(conversation=c, seq__gt=min(low, c.last_seq - 1))
    found: dict[int, list[Message]] = {c.pk: [] for c in conversations}
    for message in (
        Message.objects.filter(window)
        .exclude(kind=Message.Kind.SYSTEM)
        .select_related("sender")
        .order_by("seq")
    ):
        found[message.conversation_id].append(message)
    rooms = []
    for c in conversations:
        rooms.append(_room(c, members[c.pk], found[c.pk]))
    return rooms


def _recipient(message: Message, by_user: dict[int, Membership]) -> Membership | None:
    """The other member of a direct conversation: the one a message is addressed to."""
    return next((m for user_id, m in by_user.items() if user_id != message.sender_id), None)


def _line(conversation: Conversation, message: Message, by_user: dict[int, Membership]) -> Line:
    recipient = _recipient(message, by_user)
    return Line(
        id=message.public_id,
        sender=party(message.sender) if message.sender else None,
        recipient_id=recipient.user.public_id if recipient else "",
        room_id=conversation.public_id,
        text=_text(message),
        read=recipient is not None and recipient.last_read_seq >= message.seq,
        created_at=message.created_at,
        updated_at=message.edited_at or message.deleted_at or message.created_at,
    )


def _room(conversation: Conversation, members: list[Membership], messages: list[Message]) -> Room:
    by_user = {m.user_id: m for m in members}
    creator_first = sorted(members, key=lambda m: m.user_id != conversation.created_by_id)
    newest = next((m for m in reversed(messages) if m.seq == conversation.last_seq), None)
    unread = []
    for message in messages:
        recipient = _recipient(message, by_user)
        if recipient is not None and message.seq > recipient.last_read_seq:
            unread.append((message.public_id, party(recipient.user)))
    return Room(
        id=conversation.public_id,
        participants=[party(m.user) for m in creator_first],
        last=_line(conversation, newest, by_user) if newest else None,
        unread=unread[-UNREAD_MAX:],
        created_at=conversation.created_at,
        updated_at=conversation.last_message_at,
    )


def active_rooms(*, user: User) -> list[Room]:
    """The user's active rooms, oldest first (the client sorts them itself)."""
    # Only rooms with the other participant in them: the app's screens need exactly one other
    # (a direct conversation can have one member, e.g. while it is a chat request).
    partner = Membership.objects.filter(conversation=OuterRef("pk"), left_at__isnull=True).exclude(user=user)
    conversations = list(
        Conversation.objects.filter(kind=DIRECT, memberships__user=user, memberships__left_at__isnull=True)
        .filter(Q(last_seq__gt=0) | Q(created_by=user))
        .filter(Exists(partner))
        .order_by("created_at", "pk")[: settings.CHAT["CONVERSATION_LIST_LIMIT"]]
    )
    return _rooms(conversations)


def room_is_active(*, user: User, conversation: Conversation) -> bool:
    return conversation.last_seq > 0 or conversation.created_by_id == user.pk


def room_by_id(*, conversation_id: str) -> Room | None:
    """A direct conversation's room, for an event already addressed to its members."""
    conversation = Conversation.objects.filter(public_id=conversation_id, kind=DIRECT).first()
    return _rooms([conversation])[0] if conversation else None


def room_of(*, conversation: Conversation) -> Room:
    return _rooms([conversation])[0]


def room_lines(*, conversation_id: str) -> list[Line]:
    """The newest MESSAGES_MAX messages of a direct conversation, oldest first."""
    conversation = Conversation.objects.filter(public_id=conversation_id, kind=DIRECT).first()
    if conversation is None:
        return []
    members = list(Membership.objects.filter(conversation=conversation).select_related("user"))
    messages = list(
        Message.objects.filter(conversation=conversation, seq__gt=conversation.last_seq - MESSAGES_MAX)
        .exclude(kind=Message.Kind.SYSTEM)
        .select_related("sender")
        .order_by("seq")
    )
    by_user = {m.user_id: m for m in members}
    return [_line(conversation, message, by_user) for message in messages]


@dataclass(frozen=True)
class Profile:
    user: User
    friends: list[Party]
    rooms: list[Room]


def profile(*, user: User) -> Profile:
    """What sign-in and `GET /user/:id` return: the user, their friends, their active rooms."""
    return Profile(user, [party(f) for f in friends.friends_of(user=user)], active_rooms(user=user))


def user_search(*, viewer: User, text: str) -> list[Party]:
    """Users of the viewer's realm whose name contains `text` (literally, any case), without
    the viewer and their friends, oldest accounts first, at most CHAT SEARCH_MAX_RESULTS."""
    if not text:
        return []
    exclude = friends.friend_ids_of(user=viewer) | {viewer.public_id}
    found = (
        users_visible(viewer=viewer)
        .filter(display_name__icontains=text)
        .exclude(public_id__in=exclude)
        .order_by("created_at", "pk")[: settings.CHAT["SEARCH_MAX_RESULTS"]]
    )
    return [party(u) for u in found]


def handle_matches(*, handle_id: str, digest: str) -> bool:
    """Whether the live handle `handle_id` (its public id) is the one whose digest this is."""
    return IdHandle.objects.filter(public_id=handle_id, handle_hash=digest, revoked_at__isnull=True).exists()


def direct_room_active(*, user: User, other_user_id: str) -> bool:
    """Whether the user's room with another user already is in their active list."""
    other = users_visible(viewer=user).filter(public_id=other_user_id).first()
    if other is None:
        return False
    conversation = direct_conversation_find(user=user, other=other)
    return conversation is not None and room_is_active(user=user, conversation=conversation)
