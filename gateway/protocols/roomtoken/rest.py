"""Seed 002's REST history, `GET /v1/chat` and `/v1/chat/` (spec §5, §6), with the original's
validation messages (Joi's words), its 400 body `{"code", "message", "success": false}` and its
success body `{"message": "chat", "data": [message, ...]}`, oldest first.

Unlike the original, the caller authenticates with what its socket presents: `userId` (or
`customerID`, `vendorID`: its id handle) or `token` (a tenant JWT) in the query, or
`Authorization: Bearer <either>`; those keys are the only ones added to the original's four.
History is the caller's only where it is a member of the room's conversation: an unknown
token, a stranger's room, a request not accepted yet and a room the caller left all read as no
messages.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from accounts.identity import Policy, Presented, identity_resolve
from accounts.models import User
from accounts.verification import verification_check
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.timefmt import iso_ms
from gateway import registry
from messaging.events import attachment_payload
from messaging.selectors import message_history

from . import wire
from .protocol import presented_id
from .store import selectors as rooms
from .store.models import Namespace

logger = logging.getLogger(__name__)

KEYS = ("roomToken", "namespace", "limit", "page")  # the original's, in its schema's order
CREDENTIAL_KEYS = ("userId", "customerID", "vendorID", "token")
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 5, 20, 20
PAGE_MIN = 1
SEQ_MAX = 2**63 - 1


class Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _policy() -> Policy:
    """The policy of the first roomtoken mount (REST serves the socket's realm)."""
    for mount in registry.mounts():
        if mount.policy.protocol == "roomtoken":
            return mount.policy
    return Policy(realm="apps", forms=("id_handle", "tenant_jwt"), protocol="roomtoken")


# A decimal number as JavaScript's Number() reads one (Joi converts query strings with it):
# ASCII digits only, no `_` separators, no "nan"/"inf", all of which Python's float() takes.
NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*", re.ASCII)


def _number(raw: str, key: str, minimum: int, maximum: int | None) -> int:
    if not NUMBER.fullmatch(raw):
        raise Invalid(f'"{key}" must be a number')
    value = float(raw)
    if value in (float("inf"), float("-inf")):
        raise Invalid(f'"{key}" must be a number')
    if not value.is_integer():
        raise Invalid(f'"{key}" must be an integer')
    if value < minimum:
        raise Invalid(f'"{key}" must be larger than or equal to {minimum}')
    if maximum is not None and value > maximum:
        raise Invalid(f'"{key}" must be less than or equal to {maximum}')
    return int(value)


def _one(query: Any, key: str, kind: str) -> str | None:
    """A key's single value (a repeated key is an array to the original's query parser)."""
    values = query.getlist(key)
    if len(values) > 1:
        raise Invalid(f'"{key}" must be {kind}')
    return values[0] if values else None


def history_query(query: Any) -> tuple[str, str, int, int]:
    """(roomToken, namespace, limit, page) of a query string, or Invalid with the first error in
    Joi's order: the schema's keys in order, then unknown keys."""
    token = _one(query, "roomToken", "a string")
    if token is None:
        raise Invalid('"roomToken" is required')
    if token == "":
        raise Invalid('"roomToken" is not allowed to be empty')
    namespace = _one(query, "namespace", "a string")
    if namespace is None:
        raise Invalid('"namespace" is required')
    if namespace == "":
        raise Invalid('"namespace" is not allowed to be empty')
    if namespace not in Namespace.values:
        raise Invalid(f'"namespace" must be one of [{", ".join(Namespace.values)}]')
    raw_limit, raw_page = _one(query, "limit", "a number"), _one(query, "page", "a number")
    limit = LIMIT_DEFAULT if raw_limit is None else _number(raw_limit, "limit", LIMIT_MIN, LIMIT_MAX)
    page = PAGE_MIN if raw_page is None else _number(raw_page, "page", PAGE_MIN, None)
    for key in query:
        if key not in KEYS and key not in CREDENTIAL_KEYS:
            raise Invalid(f'"{key}" is not allowed')
    return token, namespace, limit, page


def _caller(request: HttpRequest) -> tuple[User, str] | None:
    """The caller and the id it calls itself, or None for no credentials; ApplicationError
    for bad ones."""
    token, handle = request.GET.get("token") or None, presented_id(request.GET)
    header = request.headers.get("Authorization", "")
    if not token and not handle and header[:7].lower() == "bearer ":
        bearer = header[7:].strip()
        token, handle = (bearer, None) if bearer.count(".") == 2 else (None, bearer or None)
    if not token and not handle:
        return None
    presented = Presented(token=token) if token else Presented(handle=handle)
    identity = identity_resolve(policy=_policy(), presented=presented)
    if identity.verification is not None:
        verification_check(identity.verification)
    user = identity.user
    return user, (handle if not token else (user.external_id or user.public_id))


def _message(message: Any, room: rooms.RoomInfo, viewer: str, shown: str) -> dict[str, Any]:
    def names(user_id: str) -> str:
        if user_id == viewer:
            return shown
        return room.customer if user_id == room.customer_id else room.vendor

    sender = message.sender.public_id if message.sender else ""
    receiver = room.vendor_id if sender == room.customer_id else room.customer_id
    attachment = attachment_payload(message.served_attachment)
    return wire.message(
        message_id=message.public_id,
        content=attachment["url"] if attachment else message.served_content,
        kind=message.kind,
        client_message_id=message.client_message_id,
        sender=names(sender),
        receiver=names(receiver),
        room_key=room.room_key,
        created_at=iso_ms(message.created_at),
    )


def _history(
    user: User, shown: str, token: str, namespace: str, limit: int, page: int
) -> list[dict[str, Any]]:
    after = limit * (page - 1)
    if after >= SEQ_MAX:
        return []
    try:
        room = rooms.room_get_for_party(user=user, namespace=namespace, token=token)
        # Seqs are gapless from 1: page p is exactly seqs limit*(p-1)+1 .. limit*p, read by key.
        # A party who left the room reads nothing of it, as a stranger (the room is gone for
        # them until they join again).
        _conversation, messages = message_history(
            user=user,
            conversation_id=room.conversation.public_id,
            after=after,
            limit=limit,
            include_left=False,
        )
    except ApplicationError as error:
        if error.code != ErrorCode.NOT_FOUND:
            raise
        return []
    info = rooms.room_info(room)
    return [_message(m, info, user.public_id, shown) for m in messages]


@require_safe
def chat_history(request: HttpRequest) -> JsonResponse:
    """Called by the apps to page through a room's messages, oldest first."""
    try:
        token, namespace, limit, page = history_query(request.GET)
    except Invalid as invalid:
        return JsonResponse({"code": 400, "message": invalid.message, "success": False}, status=400)
    try:
        caller = _caller(request)
    except ApplicationError:
        return JsonResponse(wire.USER_ID_INVALID | {"success": False}, status=401)
    if caller is None:
        return JsonResponse(wire.USER_ID_REQUIRED | {"success": False}, status=401)
    try:
        data = _history(caller[0], caller[1], token, namespace, limit, page)
    except Exception:
        logger.exception("roomtoken history failed")
        return JsonResponse({"message": "internal_error", "success": False})  # the original's 200
    return JsonResponse({"message": "chat", "data": data})
