"""Writes of rooms: `room_join`, what `join-room` and `accept-room` do (spec §4.3, §4.4), and
`room_leave`, what `leave-room` does (§4.7), on the core's chat requests and memberships."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.selectors import users_in_realm
from chatproject.core.errors import ApplicationError, ErrorCode
from messaging.models import ChatRequest
from messaging.selectors import chat_request_of_conversation
from messaging.services import (
    chat_request_accept,
    chat_request_create,
    conversation_leave,
    conversation_rejoin,
)

from .models import Namespace, Room
from .selectors import NOT_A_MEMBER, room_find, room_get_for_party, token_valid

CUSTOMER = "customer"
VENDOR = "vendor"
DECLINED = "The chat request was declined"


@dataclass(frozen=True)
class Joined:
    room: Room
    created: bool  # the room (and its chat request) was made now


def _refused(message: str, code: ErrorCode = ErrorCode.INVALID) -> ApplicationError:
    # The message is the wire's (`joined` {"success": false, "message"}).
    return ApplicationError(code, message)


def _other_party(user: User, other_id: object, role: str) -> User:
    """The other party, named by its id in the app (external id), in the caller's realm."""
    found = None
    if isinstance(other_id, str) and other_id:
        found = users_in_realm(of=user).filter(external_id=other_id).first()
    if found is None or not found.can_chat or found.pk == user.pk:
        raise _refused(
            "Invalid Vendor id" if role == CUSTOMER else "Invalid Customer id", ErrorCode.NOT_FOUND
        )
    return found


def room_join(
    *, user: User, namespace: str, token: object, role: str, other_id: object, room_id: object = None
) -> Joined:
    """Join (or create) the room of `token` in the caller's app and `namespace`.

    An existing room: the caller must be one of its stored parties (not whatever ids the payload
    names, spec §8.2); if a chat request of the room waits for the caller, joining accepts it.
    A new room: the caller (`role`: which side the payload said they are) asks the other party
    for a chat (a core chat request with a conversation of its own) and the room names it.
    A party who left the room (`room_leave`) is back in it (`conversation_rejoin`).
    """
    if user.app_id is None:
        raise _refused("Rooms are for the users of an app", ErrorCode.PERMISSION_DENIED)
    if not token_valid(token):
        raise _refused("roomToken is required")
    if namespace not in Namespace.values or role not in (CUSTOMER, VENDOR):
        raise _refused("Invalid namespace")
    room = room_find(user=user, namespace=namespace, token=token)
    if room is None:
        other = _other_party(user, other_id, role)
        try:
            with transaction.atomic():
                request, _created = chat_request_create(
                    user=user, other_user_id=other.public_id, distinct=False
                )
                customer, vendor = (user, other) if role == CUSTOMER else (other, user)
                room = Room.objects.create(
                    app_id=user.app_id,
                    namespace=namespace,
                    token=token,
                    room_id=room_id if token_valid(room_id) else "",
                    conversation=request.conversation,
                    customer=customer,
                    vendor=vendor,
                )
            return Joined(room, True)
        except IntegrityError:
            # The same token was taken concurrently: the request above was rolled back with it.
            room = room_find(user=user, namespace=namespace, token=token)
            if room is None:
                raise
    if user.pk not in (room.customer_id, room.vendor_id):
        raise _refused(NOT_A_MEMBER, ErrorCode.PERMISSION_DENIED)
    request = chat_request_of_conversation(conversation_id=room.conversation_id)
    if request is not None and request.state != ChatRequest.State.ACCEPTED:
        if request.recipient_id == user.pk:
            chat_request_accept(user=user, request_id=request.public_id)
        elif request.state == ChatRequest.State.DECLINED:
            raise _refused(DECLINED, ErrorCode.PERMISSION_DENIED)
    if request is not None:
        # Only the stored parties get here, so only the party who left takes their seat back.
        conversation_rejoin(user=user, conversation_id=room.conversation.public_id)
    return Joined(room, False)


def room_leave(*, user: User, namespace: str, token: object) -> Room:
    """Leave the room of `token` (the original's intent: unset the caller's side of the stored
    room). The caller's membership of its conversation ends (`conversation_leave`); the room and
    its parties stay, so the caller, and only they, can join again. Leaving twice changes
    nothing. A stranger, an unknown token, and a recipient who never accepted: not found."""
    room = room_get_for_party(user=user, namespace=namespace, token=token)
    conversation_leave(user=user, conversation_id=room.conversation.public_id)
    return room
