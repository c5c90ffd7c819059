"""CZ Messenger's REST routes under /v1/conversations (spec §5), with the original's envelopes,
statuses and snake_case keys. Unlike the original, every request carries the socket's
credential (header CHAT CZMESSENGER_TOKEN_HEADER, default `Authorization: Bearer <token>`),
resolved under the czmessenger mount's policy; the caller only ever sees its own rooms."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.http import BodyMalformed, BodyTooLarge, json_loads_strict, read_body_bounded
from accounts.identity import Policy, Presented, identity_resolve
from accounts.models import User
from accounts.verification import verification_check
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.timefmt import iso_ms
from gateway import registry

from . import wire
from .state import BUYER, SELLER
from .store import selectors as rooms
from .store import services
from .store.models import Room
from .store.selectors import wire_id

logger = logging.getLogger(__name__)

ROOM_NOT_FOUND = {"status": False, "message": "Room not found!"}
MISSING_ROLE = {"status": False, "message": "Missing 'role' field"}
FORBIDDEN = {"status": False, "message": "You do not have the authorization"}
ROOM_NOT_UPDATE = {"status": False, "message": "Room can not updated!"}
ROOM_NOT_CREATED = {"status": False, "message": "Room can not created!"}
UNAUTHENTICATED = {"status": False, "message": "Authentication Error"}


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def _policy() -> Policy:
    """The policy of the first czmessenger mount (REST serves the same realm as the socket)."""
    for mount in registry.mounts():
        if mount.policy.protocol == "czmessenger":
            return mount.policy
    return Policy(protocol="czmessenger")


def _token(request: HttpRequest) -> str | None:
    header = settings.CHAT["CZMESSENGER_TOKEN_HEADER"]
    value = request.headers.get(header, "")
    if value[:7].lower() == "bearer ":
        value = value[7:]
    return value.strip() or None


def _caller(request: HttpRequest) -> User:
    token = _token(request)
    if token is None:
        raise Refused(401, UNAUTHENTICATED)
    try:
        identity = identity_resolve(policy=_policy(), presented=Presented(token=token))
        if identity.verification is not None:
            verification_check(identity.verification)
    except ApplicationError:
        raise Refused(401, UNAUTHENTICATED) from None
    return identity.user


def _body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type.lower() != "application/json":
        return {}
    try:
        raw = read_body_bounded(request)
        data = json_loads_strict(raw) if raw else {}
    except (BodyTooLarge, BodyMalformed):
        raise Refused(400, {"status": False, "message": "Malformed JSON body"}) from None
    return data if isinstance(data, dict) else {}


def endpoint(*methods: str) -> Callable:
    """Authenticate, run the view, answer refusals with their envelope and anything
    unexpected with a logged 500 (never the exception's text)."""

    def decorate(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            try:
                return view(request, _caller(request), *args, **kwargs)
            except Refused as refused:
                return JsonResponse(refused.body, status=refused.status)
            except Exception:
                logger.exception("czmessenger endpoint %s failed", view.__name__)
                return JsonResponse({"status": False, "message": "internal_error"}, status=500)

        # Credentials come in a header, never a cookie: no CSRF exposure.
        return csrf_exempt(require_http_methods(list(methods))(wrapper))

    return decorate


def _self_check(user: User, claimed: object) -> None:
    """A `user_id` in the request must be the caller (the original trusted it)."""
    if claimed not in (None, "") and claimed != wire_id(user):
        raise Refused(403, FORBIDDEN)


def _side(value: object) -> str:
    return BUYER if value == BUYER else SELLER


def _iso(value: Any) -> str | None:
    return iso_ms(value) if value else None


def message_json(
    message: Any, room: Room, pointers: dict[int, int], images: set[int] | frozenset[int] = frozenset()
) -> dict[str, Any]:
    """`images`: the pks of the text messages sent as IMAGE links (`rooms.image_links_of`)."""
    sender_is_buyer = message.sender_id == room.buyer_id
    recipient = room.seller if sender_is_buyer else room.buyer
    kind = "IMAGE" if message.pk in images else wire.message_type(message.kind)
    return {
        "_id": message.public_id,
        "room_id": room.room_id,
        "from": wire_id(room.buyer if sender_is_buyer else room.seller),
        "to": wire_id(recipient),
        "type": kind,
        "content": message.content,
        "is_seen": message.seq <= pointers.get(recipient.pk, 0),
        "created_at": iso_ms(message.created_at),
        "updated_at": iso_ms(message.edited_at or message.created_at),
    }


def room_json(room: Room, user: User, last_messages: dict[int, Any] | None = None) -> dict[str, Any]:
    """The room as the caller's side sees it (the other side's fields left out, as the
    original's projection did). Listed rooms come annotated (`rooms.rooms_visible`) with their
    last messages read in one query; a single room reads its own."""
    side = room.side_of(user.pk)
    mine = "buyer" if side == BUYER else "seller"
    if last_messages is not None:
        last = last_messages.get(room.last_message_pk)
        pointers = {(room.seller_id if side == BUYER else room.buyer_id): room.other_read_seq}
        unseen = room.unseen_count
    else:
        last = rooms.room_last_message(room=room, user=user)
        pointers = rooms.read_pointers(room=room)
        unseen = rooms.room_unseen_messages(room=room, user=user).count()
    data = {
        "_id": room.room_id,
        "type": room.type,
        "creator": room.creator,
        "buyer": wire_id(room.buyer),
        "seller": wire_id(room.seller),
        "shop_id": room.shop_id,
        f"pinned_by_{mine}": _iso(getattr(room, f"pinned_by_{mine}")),
        f"{mine}_unseen_messages": unseen,
        f"{mine}_deleted_at": _iso(getattr(room, f"{mine}_deleted_at")),
        f"deleted_by_{mine}": getattr(room, f"deleted_by_{mine}"),
        f"{mine}_last_message": (
            message_json(last, room, pointers, rooms.image_links_of(room=room, messages=[last]))
            if last
            else None
        ),
        "created_at": iso_ms(room.created_at),
        "updated_at": iso_ms(room.updated_at),
    }
    if room.blocked_by:
        data["blocked_by"] = room.blocked_by
    if side == SELLER:
        data["buyer_info"] = room.buyer_info
    return data


def _party_room(user: User, room_id: str, status: int = 400) -> Room:
    try:
        return rooms.room_get_for_party(user=user, room_id=room_id)
    except ApplicationError:
        raise Refused(status, ROOM_NOT_FOUND) from None


# --- rooms ----------------------------------------------------------------------------------


@endpoint("GET", "POST")
def rooms_collection(request: HttpRequest, user: User) -> JsonResponse:
    """GET: the caller's rooms on one side (`role`), optionally by `name` and `pinned`.
    POST: open a room of the caller and another user of its realm."""
    if request.method == "POST":
        return _room_create(user, _body(request))
    query = request.GET
    _self_check(user, query.get("user_id"))
    role = _side(query.get("role"))
    found = rooms.rooms_visible(user=user, side=role, name=query.get("name"), pinned=query.get("pinned"))
    last = rooms.last_messages(found)
    listed = [room_json(r, user, last) for r in found]
    return JsonResponse({"user_id": wire_id(user), "role": role, "rooms": listed})


def _room_create(user: User, body: dict[str, Any]) -> JsonResponse:
    if body.get("buyer") is not None and body.get("buyer") == body.get("seller"):
        return JsonResponse({"status": False, "message": "Buyer is the same to seller"})
    try:
        opened = services.room_open(
            user=user,
            buyer_id=body.get("buyer"),
            seller_id=body.get("seller"),
            creator=body.get("creator"),
            shop_id=body.get("shop_id"),
            buyer_info=body.get("buyer_info"),
            room_type=body.get("type"),
        )
    except ApplicationError as error:
        if error.code == ErrorCode.PERMISSION_DENIED:
            raise Refused(403, FORBIDDEN) from None
        return JsonResponse(ROOM_NOT_CREATED)
    room = room_json(opened.room, user)
    if opened.created:
        return JsonResponse({"status": True, "message": "Created room successfully!", "room": room})
    if opened.reenabled:
        message = "Room exists and re-enable room for seller and buyer"
        return JsonResponse({"status": True, "message": message, "room": room})
    return JsonResponse({"status": False, "message": "Room exsits!", "room": room})


@endpoint("GET")
def rooms_unseen(request: HttpRequest, user: User) -> JsonResponse:
    """How many of the caller's rooms have messages it has not seen."""
    _self_check(user, request.GET.get("user_id"))
    role = _side(request.GET.get("role"))
    count = rooms.rooms_unseen_count(user=user, side=role)
    return JsonResponse({"unseen_rooms": count, "filters": {"user_id": wire_id(user), "role": role}})


@endpoint("GET", "DELETE")
def room_detail(request: HttpRequest, user: User, room_id: str) -> JsonResponse:
    """GET: one room of the caller (`{}` when it has none by that id). DELETE: soft delete
    for the caller's side; both parties get `room_deletion`."""
    if request.method == "GET":
        try:
            room = rooms.room_get_for_party(user=user, room_id=room_id)
        except ApplicationError:
            return JsonResponse({})
        return JsonResponse({"room": room_json(room, user)})
    try:
        room, side = services.room_delete_side(user=user, room_id=room_id)
    except ApplicationError:
        return JsonResponse(ROOM_NOT_FOUND)  # 200, as the original
    deleted_at = room.buyer_deleted_at if side == BUYER else room.seller_deleted_at
    return JsonResponse({"status": True, "role": side, "deleted_at": iso_ms(deleted_at)})


@endpoint("PUT")
def room_enable(request: HttpRequest, user: User, room_id: str) -> JsonResponse:
    """Undo the caller's side's deletion (its history cut-off stays)."""
    if not _body(request).get("role"):
        raise Refused(400, MISSING_ROLE)
    _party_room(user, room_id)
    room = services.room_enable(user=user, room_id=room_id)
    return JsonResponse(
        {"status": True, "message": "Enable room successfully!", "room": room_json(room, user)}
    )


@endpoint("POST", "DELETE")
def room_pin(request: HttpRequest, user: User, room_id: str) -> JsonResponse:
    """POST pins the room for the caller's side, DELETE unpins it."""
    _self_check(user, _body(request).get("user_id"))
    _party_room(user, room_id)
    room = services.room_pin(user=user, room_id=room_id, pinned=request.method == "POST")
    if request.method == "POST":
        return JsonResponse({"status": True})
    return JsonResponse({"status": True, "room": room_json(room, user)})


@endpoint("PUT")
def room_seen(request: HttpRequest, user: User, room_id: str) -> JsonResponse:
    """Everything in the room is seen by the caller (the original crashed here, spec §8.12)."""
    _self_check(user, _body(request).get("user_id"))
    _party_room(user, room_id)
    room = services.room_seen(user=user, room_id=room_id)
    return JsonResponse({"status": True, "room": room_json(room, user)})


@endpoint("POST")
def room_block(request: HttpRequest, user: User, room_id: str) -> JsonResponse:
    """Block or unblock (`block`: true/false); only the side that blocked may unblock."""
    body = _body(request)
    _party_room(user, room_id)
    try:
        blocked = services.room_block(user=user, room_id=room_id, block=body.get("block"))
    except ApplicationError as error:
        if error.code == ErrorCode.PERMISSION_DENIED:
            raise Refused(403, FORBIDDEN) from None
        raise Refused(400, {"status": False, "message": error.message}) from None
    answer: dict[str, Any] = {"status": True}
    if blocked.note:
        answer["message"] = blocked.note
    return JsonResponse(answer | {"room": room_json(blocked.room, user)})


# --- messages -------------------------------------------------------------------------------


def _page(room_id: object, moment: object, room: Room | None, messages: list, now: str) -> JsonResponse:
    pointers = rooms.read_pointers(room=room) if room is not None else {}
    images = rooms.image_links_of(room=room, messages=messages) if room is not None else set()
    data = [message_json(m, room, pointers, images) for m in messages] if room is not None else []
    filters = {"message_count": len(data), "from": moment or now}
    return JsonResponse({"room_id": room_id, "filters": filters, "data": data})


def _now() -> str:
    return iso_ms(timezone.now())


@endpoint("GET")
def messages_list(request: HttpRequest, user: User) -> JsonResponse:
    """A page of a room's history: `limit` (default 15, at most 100), `from`/`to` exclusive
    bounds on created_at, `created_at=1` oldest first. A room the caller is not in has no
    messages for it."""
    query = request.GET
    room_id = query.get("room_id")
    if not room_id or room_id == "undefined":
        return JsonResponse({"room_id": 0, "filters": {}, "data": []})
    try:
        room, messages = rooms.room_messages(
            user=user,
            room_id=room_id,
            limit=query.get("limit"),
            before=query.get("from"),
            after=query.get("to"),
            ascending=query.get("created_at") == "1",
        )
    except ApplicationError:
        room, messages = None, []
    return _page(room_id, query.get("from"), room, messages, _now())


@endpoint("GET")
def messages_unseen(request: HttpRequest, user: User) -> JsonResponse:
    """The other side's messages in a room the caller has not seen (`from`: inclusive upper bound)."""
    query = request.GET
    _self_check(user, query.get("user_id"))
    room_id = query.get("room_id")
    try:
        room, messages = rooms.room_messages_unseen(user=user, room_id=room_id, before=query.get("from"))
    except ApplicationError:
        room, messages = None, []
    return _page(room_id, query.get("from"), room, messages, _now())
