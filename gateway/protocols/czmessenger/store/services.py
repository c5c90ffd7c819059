"""Writes of CZ Messenger rooms. Each public service authorises through
`selectors.room_get_for_party` (or, for `room_open`, by requiring the caller to be a party)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from chatproject.bus import publish_on_commit
from chatproject.core.errors import ApplicationError, ErrorCode
from messaging.services import conversation_block, conversation_mark_read, direct_conversation_get_or_create

from . import events
from .models import ImageLink, Room, Side
from .selectors import realm_user_get, room_get_for_party, wire_id, wire_id_valid

BUYER_INFO_KEYS = ("name", "avatar", "phone_number", "email")
SHORT_MAX = 64


@dataclass(frozen=True)
class Opened:
    room: Room
    created: bool
    reenabled: bool


def _short(value: object, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool) or len(str(value)) > SHORT_MAX:
        raise ApplicationError(ErrorCode.INVALID, f"{field} must be a short string.", {"field": field})
    return str(value)


def _buyer_info(value: object) -> dict[str, str]:
    """Only the four known keys, each a string of at most 500 characters."""
    if not isinstance(value, dict):
        return {}
    return {k: value[k][:500] for k in BUYER_INFO_KEYS if isinstance(value.get(k), str)}


def room_open(
    *,
    user: User,
    buyer_id: object,
    seller_id: object,
    creator: object = None,
    shop_id: object = None,
    buyer_info: object = None,
    room_type: object = None,
) -> Opened:
    """Open (or re-enable) the room of a buyer and a seller of the caller's realm; the caller
    must be one of them. The room is the direct conversation of the two users. An existing room
    is re-enabled for both sides (the original cleared both deleted flags)."""
    if not wire_id_valid(buyer_id) or not wire_id_valid(seller_id):
        raise ApplicationError(ErrorCode.INVALID, "Invalid buyer or seller id.", {"field": "buyer"})
    if buyer_id == seller_id:
        raise ApplicationError(ErrorCode.INVALID, "Buyer is the same to seller", {"field": "seller"})
    me = wire_id(user)
    if me not in (buyer_id, seller_id):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "You do not have the authorization")
    other = realm_user_get(of=user, user_wire_id=seller_id if me == buyer_id else buyer_id)
    buyer, seller = (user, other) if me == buyer_id else (other, user)
    room_id = f"{buyer_id}.{seller_id}"
    existing = Room.objects.filter(room_id=room_id).select_related("buyer", "seller", "conversation").first()
    if existing is not None:
        return Opened(existing, False, _reenable(existing))
    conversation, _partner, _created = direct_conversation_get_or_create(
        user=user, other_user_id=other.public_id
    )
    try:
        with transaction.atomic():
            room = Room.objects.create(
                conversation=conversation,
                room_id=room_id,
                buyer=buyer,
                seller=seller,
                type=_short(room_type, "type") or "BS",
                shop_id=_short(shop_id, "shop_id"),
                creator=_short(creator, "creator"),
                buyer_info=_buyer_info(buyer_info),
            )
    except IntegrityError:
        # The same room opened concurrently, or the pair already has a room with the roles the
        # other way round (one direct conversation per pair): the existing row wins.
        room = (
            Room.objects.select_related("buyer", "seller", "conversation")
            .filter(conversation=conversation)
            .first()
        )
        if room is None or room.room_id != room_id:
            raise ApplicationError(ErrorCode.CONFLICT, "Room can not created!") from None
        return Opened(room, False, _reenable(room))
    return Opened(room, True, False)


def _reenable(room: Room) -> bool:
    if not (room.deleted_by_buyer or room.deleted_by_seller):
        return False
    room.deleted_by_buyer = room.deleted_by_seller = False
    room.updated_at = timezone.now()
    room.save(update_fields=["deleted_by_buyer", "deleted_by_seller", "updated_at"])
    return True


def room_enable(*, user: User, room_id: object) -> Room:
    """Clear the caller's side's deletion (its `deleted_at` cut-off stays: old history stays hidden)."""
    room = room_get_for_party(user=user, room_id=room_id)
    field = "deleted_by_buyer" if room.side_of(user.pk) == Side.BUYER else "deleted_by_seller"
    setattr(room, field, False)
    room.updated_at = timezone.now()
    room.save(update_fields=[field, "updated_at"])
    return room


def room_pin(*, user: User, room_id: object, pinned: bool) -> Room:
    """Pin (now) or unpin the room for the caller's side only."""
    room = room_get_for_party(user=user, room_id=room_id)
    field = "pinned_by_buyer" if room.side_of(user.pk) == Side.BUYER else "pinned_by_seller"
    setattr(room, field, timezone.now() if pinned else None)
    room.updated_at = timezone.now()
    room.save(update_fields=[field, "updated_at"])
    return room


def room_seen(*, user: User, room_id: object) -> Room:
    """Everything in the room is seen by the caller: its read pointer moves to the newest message."""
    room = room_get_for_party(user=user, room_id=room_id)
    conversation_mark_read(user=user, conversation_id=room.conversation.public_id)
    return room


def room_delete_side(*, user: User, room_id: object) -> tuple[Room, str]:
    """Soft delete for the caller's side: hidden from its lists, history before now hidden from
    it for good, pin cleared; both parties get `room_deletion` on commit."""
    room = room_get_for_party(user=user, room_id=room_id)
    side = room.side_of(user.pk)
    prefix = "buyer" if side == Side.BUYER else "seller"
    now = timezone.now()
    setattr(room, f"deleted_by_{prefix}", True)
    setattr(room, f"{prefix}_deleted_at", now)
    setattr(room, f"pinned_by_{prefix}", None)
    room.updated_at = now
    with transaction.atomic():
        room.save(
            update_fields=[
                f"deleted_by_{prefix}",
                f"{prefix}_deleted_at",
                f"pinned_by_{prefix}",
                "updated_at",
            ]
        )
        # Whatever came before the deletion counts as seen for that side.
        conversation_mark_read(user=user, conversation_id=room.conversation.public_id)
        publish_on_commit(
            events.room_deleted(room=room, side=side, actor_id=user.public_id),
            user_ids=[room.buyer.public_id, room.seller.public_id],
        )
    return room, side


@dataclass(frozen=True)
class Blocked:
    room: Room
    note: str | None  # the original's "already" messages


def room_block(*, user: User, room_id: object, block: object) -> Blocked:
    """Block (or unblock) the room. Only the side that blocked may unblock. The block itself
    is the conversation's (`messaging.services.conversation_block`): messaging's send path
    refuses new messages from both sides, over every protocol."""
    room = room_get_for_party(user=user, room_id=room_id)
    side = room.side_of(user.pk)
    if not isinstance(block, bool):
        raise ApplicationError(ErrorCode.INVALID, "block must be true or false.", {"field": "block"})
    if not room.blocked_by:
        if not block:
            return Blocked(room, "Room opened already!")
        room.blocked_by = side
    else:
        if block:
            return Blocked(room, "Room closed already!")
        if room.blocked_by != side:
            raise ApplicationError(ErrorCode.PERMISSION_DENIED, "You do not have the authorization")
        room.blocked_by = ""
    room.updated_at = timezone.now()
    with transaction.atomic():
        room.save(update_fields=["blocked_by", "updated_at"])
        # The core enforces it for every protocol; `blocked_by` only says which side may unblock.
        room.conversation = conversation_block(
            user=user, conversation_id=room.conversation.public_id, blocked=bool(room.blocked_by)
        )
    return Blocked(room, None)


def image_link_mark(*, user: User, room_id: object, client_message_id: str) -> None:
    """Before an IMAGE-with-URL send by a party of the room: remember its wire type (idempotent,
    so a retry marks nothing new). A send that then fails leaves a mark no message matches."""
    room = room_get_for_party(user=user, room_id=room_id)
    ImageLink.objects.get_or_create(
        conversation_id=room.conversation_id, sender=user, client_message_id=client_message_id
    )
