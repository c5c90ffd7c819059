"""Reads of rooms. A room is found by (app, namespace, token); whoever asks must be one of its
parties (`room_get_for_party`); what they may read or write is then the conversation's
membership, checked by the core."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable
from messaging.models import ChatRequest, Membership

from .models import TOKEN_MAX, Namespace, Room

NOT_A_MEMBER = "You are not a member of this rooms"  # the original's words


@dataclass(frozen=True)
class RoomInfo:
    """What rendering and handlers need of a room, plain (cached per process and connection)."""

    room_key: str  # the wire `_id`
    conversation_id: str
    namespace: str
    token: str
    room_id: str
    customer_id: str  # public ids of the parties
    vendor_id: str
    customer: str  # their wire ids (the app's own ids)
    vendor: str

    def other(self, user_id: str) -> str | None:
        """The public id of the other party, None for a stranger."""
        if user_id == self.customer_id:
            return self.vendor_id
        if user_id == self.vendor_id:
            return self.customer_id
        return None


def wire_id(user: User) -> str:
    """A user as other clients see them: the app's own id (the public id for anyone without)."""
    return user.external_id or user.public_id


def token_valid(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= TOKEN_MAX and is_storable(value)


def namespace_valid(value: object) -> bool:
    return value in Namespace.values


def room_info(room: Room) -> RoomInfo:
    return RoomInfo(
        room_key=room.public_id,
        conversation_id=room.conversation.public_id,
        namespace=room.namespace,
        token=room.token,
        room_id=room.room_id,
        customer_id=room.customer.public_id,
        vendor_id=room.vendor.public_id,
        customer=wire_id(room.customer),
        vendor=wire_id(room.vendor),
    )


def _rooms() -> QuerySet[Room]:
    return Room.objects.select_related("customer", "vendor", "conversation")


def room_find(*, user: User, namespace: object, token: object) -> Room | None:
    """The room of a token in the caller's app and a namespace, whoever its parties are."""
    if user.app_id is None or not namespace_valid(namespace) or not token_valid(token):
        return None
    return _rooms().filter(app_id=user.app_id, namespace=namespace, token=token).first()


def room_get_for_party(*, user: User, namespace: object, token: object) -> Room:
    """The room of a token, if the caller is one of its stored parties (spec §8.2: never the
    ids a payload claims). Unknown tokens and strangers get the same not-found."""
    room = room_find(user=user, namespace=namespace, token=token)
    if room is None or user.pk not in (room.customer_id, room.vendor_id):
        raise ApplicationError(ErrorCode.NOT_FOUND, NOT_A_MEMBER, {"field": "roomToken"})
    return room


def _left(**who) -> Exists:
    """Whether the room's conversation has a former member (among `who`, if given)."""
    return Exists(
        Membership.objects.filter(conversation=OuterRef("conversation"), left_at__isnull=False, **who)
    )


def _declined() -> Exists:
    """Whether the room's chat request was declined."""
    return Exists(
        ChatRequest.objects.filter(conversation=OuterRef("conversation"), state=ChatRequest.State.DECLINED)
    )


def rooms_of_user(*, user: User, namespace: str) -> list[Room]:
    """The caller's rooms in a namespace (`list-room`), oldest first, at most CHAT
    CONVERSATION_LIST_LIMIT: those they are in or are asked into, not those they left nor
    those whose request was declined (the requester's membership ended with it; the recipient
    who declined it is not asked any more, though accepting it later still works). Each has
    `someone_left` (the other party left it: their presence is not shared)."""
    return list(
        _rooms()
        .filter(Q(customer=user) | Q(vendor=user), namespace=namespace)
        .exclude(_left(user=user))
        .exclude(_declined())
        .annotate(someone_left=_left())
        .order_by("created_at", "pk")[: settings.CHAT["CONVERSATION_LIST_LIMIT"]]
    )


def room_info_for_conversation(*, conversation_id: str) -> RoomInfo | None:
    room = _rooms().filter(conversation__public_id=conversation_id).first()
    return room_info(room) if room is not None else None


def room_infos_of_user(*, user_id: str) -> list[RoomInfo]:
    """The rooms of a user in both namespaces (presence), at most CHAT CONVERSATION_LIST_LIMIT;
    not those either party left (their presence is no longer the other's business)."""
    rooms = _rooms().filter(Q(customer__public_id=user_id) | Q(vendor__public_id=user_id)).exclude(_left())
    return [room_info(r) for r in rooms.order_by("pk")[: settings.CHAT["CONVERSATION_LIST_LIMIT"]]]
