"""Who receives a rendered domain event: the one evaluator.

Services choose the bus groups an event goes to (a conversation's members, through
`messaging.services.audience`). A protocol's `render` turns the event into `Emit`s, each naming
its audience by role: everyone the bus target reaches, or only the event's actor or subject,
minus roles, minus the connection that asked, minus users who turned receipts off, minus
connections that did not opt in to what the emit requires. This module turns that into the
local connections of one bus target; the hub hands the result to its transport.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from chatproject.bus.groups import USER_PREFIX

# Roles a recipient can have in a domain event: who caused it, and whom it is about.
ACTOR = "actor"
SUBJECT = "subject"
ALL = "all"


@dataclass(slots=True)
class Emit:
    """One outbound event: sent `to` everyone the bus target reaches (ALL) or only the event's
    ACTOR or SUBJECT among them, minus the recipients holding a role listed in `skip`."""

    name: str
    payload: Any
    to: str = ALL
    skip: tuple[str, ...] = ()
    # A read or delivered receipt: never sent to recipients who turned read receipts off.
    receipt: bool = False
    # Not to the connection the change came from (the event's `origin`): it has its ack.
    skip_origin: bool = False
    # Only to connections that opted in to this capability (Connection.capabilities).
    requires: str | None = None
    # Only to connections the protocol says are in this scope (`Protocol.in_scope`): e.g. the
    # rooms a socket joined, for protocols whose clients join some of their conversations only.
    scope: str | None = None
    # Only to this user's connections (a public id): for payloads that differ per recipient.
    user: str | None = None


@dataclass(frozen=True)
class Local:
    """What the evaluator needs of a hub's local connections."""

    by_user: Mapping[str, Set[str]]  # user id -> local connection ids
    receipts_off: Set[str]  # users with local connections who turned read receipts off
    lacking: Mapping[str, Set[str]]  # capability -> local connection ids without it


@dataclass(slots=True)
class Delivery:
    """The local connections of a bus target that get one emit: all of them (`only` None) or
    those in `only`, minus `skip`."""

    only: frozenset[str] | None
    skip: frozenset[str]


_NOBODY: frozenset[str] = frozenset()
# The roles one recipient can hold, by (actor?, subject?): made once, not per emit.
_HELD = {
    (False, False): frozenset(),
    (True, False): frozenset({ACTOR}),
    (False, True): frozenset({SUBJECT}),
    (True, True): frozenset({ACTOR, SUBJECT}),
}


def _conns(local: Local, user_id: str | None) -> Set[str]:
    return local.by_user.get(user_id or "", _NOBODY)


def deliveries(
    target: str, event: dict[str, Any], emits: list[Emit], local: Local
) -> list[tuple[Emit, Delivery]]:
    """Each emit with the local connections of bus group `target` that receive it (emits that
    reach nobody here are left out)."""
    actor, subject = event.get("actor"), event.get("subject")
    origin = event.get("origin")
    result = []
    if target.startswith(USER_PREFIX):
        # A user's own group: every local connection of one user, whose roles are known. (The
        # path of every direct message, twice: kept free of per-emit sets where none is needed.)
        recipient = target[len(USER_PREFIX) :]
        held = _HELD[bool(actor) and actor == recipient, bool(subject) and subject == recipient]
        for emit in emits:
            if emit.receipt and recipient in local.receipts_off:
                continue
            if emit.to != ALL and emit.to not in held:
                continue
            if emit.user is not None and emit.user != recipient:
                continue
            if not held.isdisjoint(emit.skip):
                continue
            skip = frozenset((origin,)) if emit.skip_origin and origin else _NOBODY
            if emit.requires is not None:
                skip = skip | local.lacking.get(emit.requires, _NOBODY)
            result.append((emit, Delivery(None, skip)))
        return result
    roles = {ACTOR: actor, SUBJECT: subject}
    # A conversation's group: many users, each connection filtered by its user's role.
    for emit in emits:
        only = None if emit.to == ALL else frozenset(_conns(local, roles.get(emit.to)))
        if emit.user is not None:
            mine = frozenset(_conns(local, emit.user))
            only = mine if only is None else only & mine
        if only is not None and not only:
            continue
        skip: set[str] = set()
        for role in emit.skip:
            skip |= _conns(local, roles.get(role))
        if emit.receipt:
            for user_id in local.receipts_off:
                skip |= _conns(local, user_id)
        if emit.skip_origin and origin:
            skip.add(origin)
        if emit.requires is not None:
            skip |= local.lacking.get(emit.requires, _NOBODY)
        result.append((emit, Delivery(only, frozenset(skip))))
    return result
