"""Reads of CZ Messenger rooms. Every read of a room by id goes through `room_get_for_party`:
a caller only ever sees the rooms it is a party of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, DateTimeField, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.identity import external_id_valid
from accounts.models import User
from accounts.selectors import users_in_realm
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id
from messaging.models import Membership, Message

from .models import ImageLink, Room, Side

ROOMS_MAX = 500  # rooms one list answer holds at most
MESSAGES_DEFAULT = 15  # the original's default page
MESSAGES_MAX = 100  # the original had no maximum (spec §8.5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wire_id(user: User) -> str:
    """A user's id on this wire: the tenant's own id (external id), or the public id of a
    first-party user."""
    return user.external_id or user.public_id


def wire_id_valid(value: object) -> bool:
    """Ids are joined with a dot into room ids: an id with a dot (or anything an external id
    may not hold) is refused (spec §8.8)."""
    return external_id_valid(value) or is_public_id(value)


def room_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "Room not found!", {"field": "room_id"})


def realm_user_get(*, of: User, user_wire_id: object) -> User:
    """A user of `of`'s realm named by its wire id (not found across realms, like an unknown id)."""
    if not wire_id_valid(user_wire_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})
    realm = users_in_realm(of=of)
    found = realm.filter(Q(external_id=user_wire_id) if of.app_id else Q(public_id=user_wire_id)).first()
    if found is None or not found.can_chat:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.", {"field": "user_id"})
    return found


def _rooms() -> QuerySet[Room]:
    return Room.objects.select_related("buyer", "seller", "conversation")


def room_get_for_party(*, user: User, room_id: object) -> Room:
    """The room `room_id` if `user` is its buyer or its seller; not found otherwise."""
    if not isinstance(room_id, str) or len(room_id) > 130:
        raise room_not_found()
    room = _rooms().filter(room_id=room_id).first()
    if room is None:
        raise room_not_found()
    if room.side_of(user.pk) is None:
        raise room_not_found()
    return room


@dataclass(frozen=True)
class RoomInfo:
    """What rendering needs of a room (plain data, cached by the protocol)."""

    room_id: str
    conversation_id: str
    buyer_id: str  # public ids: what bus events name
    seller_id: str
    buyer: str  # wire ids
    seller: str


def room_info(room: Room) -> RoomInfo:
    return RoomInfo(
        room.room_id,
        room.conversation.public_id,
        room.buyer.public_id,
        room.seller.public_id,
        wire_id(room.buyer),
        wire_id(room.seller),
    )


def room_info_for_conversation(*, conversation_id: str) -> RoomInfo | None:
    room = _rooms().filter(conversation__public_id=conversation_id).first()
    return room_info(room) if room else None


def room_infos_of_user(*, user_id: str) -> list[RoomInfo]:
    """The rooms a user (public id) is a party of, for presence (bounded)."""
    rooms = _rooms().filter(Q(buyer__public_id=user_id) | Q(seller__public_id=user_id))
    return [room_info(r) for r in rooms.order_by("-id")[:ROOMS_MAX]]


def _side_fields(side: str) -> tuple[str, str, str]:
    prefix = "buyer" if side == Side.BUYER else "seller"
    return prefix, f"deleted_by_{prefix}", f"{prefix}_deleted_at"


def rooms_visible(*, user: User, side: str, name: object = None, pinned: object = None) -> list[Room]:
    """The rooms where `user` is on `side`, as the original listed them: not deleted by that
    side, or with a message after that side's deletion; pinned first (newest pin first), then
    by the last message. `name` filters case-insensitively on the other side's name (a plain
    substring: never a pattern, spec §8.4); `pinned` "1" keeps the pinned, anything else the
    unpinned."""
    prefix, deleted, deleted_at = _side_fields(side)
    rooms = (
        _rooms()
        .filter(**{prefix: user})
        .filter(Q(**{deleted: False}) | Q(conversation__last_message_at__gt=F(deleted_at)))
    )
    if isinstance(name, str) and name:
        if side == Side.BUYER:
            rooms = rooms.filter(Q(seller__display_name__icontains=name) | Q(shop_id__icontains=name))
        else:
            rooms = rooms.filter(buyer_info__name__icontains=name) | rooms.filter(
                buyer__display_name__icontains=name
            )
    if pinned is not None:
        rooms = rooms.filter(**{f"pinned_by_{prefix}__isnull": pinned != "1"})
    order = [F(f"pinned_by_{prefix}").desc(nulls_last=True), F("conversation__last_message_at").desc()]
    return list(_with_counts(rooms, user, prefix).order_by(*order)[:ROOMS_MAX])


def _with_counts(rooms: QuerySet[Room], user: User, prefix: str) -> QuerySet[Room]:
    """Each room with what a list shows of it, in the same query (no query per room):
    `unseen_count` (the other side's messages after the user's read pointer and after the
    side's deletion), `last_message_pk`, and the other party's read pointer `other_read_seq`."""
    conversation = OuterRef("conversation")
    pointer = Membership.objects.filter(conversation=conversation, user=user).values("last_read_seq")[:1]
    other = (
        Membership.objects.filter(conversation=conversation).exclude(user=user).values("last_read_seq")[:1]
    )
    cutoff = Coalesce(OuterRef(f"{prefix}_deleted_at"), Value(EPOCH, output_field=DateTimeField()))
    visible = Message.objects.filter(
        conversation=conversation, deleted_at__isnull=True, hidden_at__isnull=True, created_at__gt=cutoff
    )
    unseen = (
        visible.filter(seq__gt=Coalesce(Subquery(pointer), 0))
        .exclude(sender=user)
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return rooms.annotate(
        unseen_count=Coalesce(Subquery(unseen), 0),
        last_message_pk=Subquery(visible.order_by("-seq").values("pk")[:1]),
        other_read_seq=Coalesce(Subquery(other), 0),
    )


def last_messages(rooms: list[Room]) -> dict[int, Message]:
    """The annotated last messages of listed rooms, in one query."""
    pks = [r.last_message_pk for r in rooms if getattr(r, "last_message_pk", None)]
    return Message.objects.select_related("sender").in_bulk(pks)


def _cutoff(room: Room, user: User) -> datetime | None:
    return room.buyer_deleted_at if room.side_of(user.pk) == Side.BUYER else room.seller_deleted_at


def _visible_messages(room: Room, user: User) -> QuerySet[Message]:
    messages = Message.objects.filter(
        conversation=room.conversation, deleted_at__isnull=True, hidden_at__isnull=True
    ).select_related("sender")
    cutoff = _cutoff(room, user)
    return messages.filter(created_at__gt=cutoff) if cutoff else messages


def _read_pointer(room: Room, user: User) -> int:
    return (
        Membership.objects.filter(conversation=room.conversation, user=user)
        .values_list("last_read_seq", flat=True)
        .first()
        or 0
    )


def room_unseen_messages(*, room: Room, user: User) -> QuerySet[Message]:
    """The other side's messages after `user`'s read pointer (unseen counts come from read
    pointers, never from a counter of their own)."""
    return _visible_messages(room, user).filter(seq__gt=_read_pointer(room, user)).exclude(sender=user)


def room_last_message(*, room: Room, user: User) -> Message | None:
    return _visible_messages(room, user).order_by("-seq").first()


def rooms_unseen_count(*, user: User, side: str) -> int:
    return sum(1 for room in rooms_visible(user=user, side=side) if room.unseen_count > 0)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def page_limit(value: object) -> int:
    try:
        limit = int(value) if value not in (None, "") else MESSAGES_DEFAULT
    except (TypeError, ValueError):
        limit = MESSAGES_DEFAULT
    return max(1, min(limit, MESSAGES_MAX))


def room_messages(
    *,
    user: User,
    room_id: object,
    limit: object = None,
    before: object = None,
    after: object = None,
    ascending: bool = False,
) -> tuple[Room, list[Message]]:
    """A page of a room's history the caller may see: `before`/`after` exclusive ISO bounds on
    `created_at`, at most MESSAGES_MAX."""
    room = room_get_for_party(user=user, room_id=room_id)
    messages = _visible_messages(room, user)
    if (upper := _time(before)) is not None:
        messages = messages.filter(created_at__lt=upper)
    if (lower := _time(after)) is not None:
        messages = messages.filter(created_at__gt=lower)
    order = "seq" if ascending else "-seq"
    return room, list(messages.order_by(order)[: page_limit(limit)])


def room_messages_unseen(*, user: User, room_id: object, before: object = None) -> tuple[Room, list[Message]]:
    room = room_get_for_party(user=user, room_id=room_id)
    messages = room_unseen_messages(room=room, user=user)
    if (upper := _time(before)) is not None:
        messages = messages.filter(created_at__lte=upper)
    return room, list(messages.order_by("-seq")[:MESSAGES_MAX])


def read_target_at(*, room: Room, created_at: object) -> str | None:
    """The newest message at or before an ISO time (the `last_message_created_at` form of a
    seen receipt), or None."""
    moment = _time(created_at)
    if moment is None:
        return None
    found = (
        Message.objects.filter(conversation=room.conversation, created_at__lte=moment)
        .order_by("-seq")
        .values_list("public_id", flat=True)
        .first()
    )
    return found


def message_at_seq(*, conversation_id: str, seq: int) -> tuple[str, datetime] | None:
    """(id, created_at) of the message with this seq, for seen relays."""
    return (
        Message.objects.filter(conversation__public_id=conversation_id, seq=seq)
        .values_list("public_id", "created_at")
        .first()
    )


def read_pointers(*, room: Room) -> dict[int, int]:
    """user pk -> last read seq, for both parties."""
    return dict(
        Membership.objects.filter(conversation=room.conversation).values_list("user_id", "last_read_seq")
    )


def looks_like_image_link(*, content: object, client_message_id: object) -> bool:
    """Whether a text message could be an IMAGE-with-URL send (the only ones worth a lookup)."""
    return (
        isinstance(content, str)
        and content.startswith(("http://", "https://"))
        and isinstance(client_message_id, str)
    )


def image_link_is(*, conversation_id: str, sender_id: str, client_message_id: str) -> bool:
    """Whether the message a sender (public id) sent with this client id was an IMAGE link."""
    return ImageLink.objects.filter(
        conversation__public_id=conversation_id,
        sender__public_id=sender_id,
        client_message_id=client_message_id,
    ).exists()


def image_links_of(*, room: Room, messages: list[Message]) -> set[int]:
    """The pks of those of `messages` (of `room`) sent as IMAGE links, in one query (none when
    no message looks like one)."""
    candidates = [
        m
        for m in messages
        if m.kind == Message.Kind.TEXT
        and looks_like_image_link(content=m.content, client_message_id=m.client_message_id)
    ]
    if not candidates:
        return set()
    marked = set(
        ImageLink.objects.filter(
            conversation_id=room.conversation_id,
            client_message_id__in={m.client_message_id for m in candidates},
        ).values_list("sender_id", "client_message_id")
    )
    return {m.pk for m in candidates if (m.sender_id, m.client_message_id) in marked}
