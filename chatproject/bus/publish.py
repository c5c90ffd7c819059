"""publish_on_commit: the one way a domain event leaves a service for the bus."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from . import transport as bus
from .groups import app_group, conversation_group, user_group


@dataclass(frozen=True)
class PublishItem:
    """One domain event and the users and conversations whose bus groups receive it."""

    event: dict[str, Any]
    user_ids: Iterable[str] = ()
    conversation_ids: Iterable[str] = ()
    app_ids: Iterable[str] = ()

    def groups(self) -> list[str]:
        groups = [user_group(u) for u in dict.fromkeys(self.user_ids)]
        groups += [app_group(a) for a in dict.fromkeys(self.app_ids)]
        return groups + [conversation_group(c) for c in dict.fromkeys(self.conversation_ids)]


def publish_on_commit(
    event: dict[str, Any],
    *,
    user_ids: Iterable[str] = (),
    conversation_ids: Iterable[str] = (),
    app_ids: Iterable[str] = (),
) -> None:
    """Publish `event` to the given users', conversations' and apps' bus groups once the current
    transaction commits (at once outside a transaction). Nothing is sent on rollback."""
    publish_many_on_commit([PublishItem(event, tuple(user_ids), tuple(conversation_ids), tuple(app_ids))])


def publish_many_on_commit(items: list[PublishItem]) -> None:
    """Publish several events, in order, with one hand-over to the bus once the transaction
    commits (a batch of sends becomes one pipelined write to Redis)."""
    batch = [(groups, item.event) for item in items if (groups := item.groups())]
    if batch:
        transaction.on_commit(lambda: [bus.send(groups, event) for groups, event in batch])


def publish_many_committed(items: list[PublishItem]) -> None:
    """`publish_many_on_commit` for a change already committed on a connection Django does not
    manage (the send batch's event-loop driver, gateway/writer.py): at once, from any thread."""
    for item in items:
        if groups := item.groups():
            bus.send(groups, item.event)


async def publish_now(
    event: dict[str, Any],
    *,
    user_ids: Iterable[str] = (),
    conversation_ids: Iterable[str] = (),
) -> None:
    """Publish at once, from the event loop, an event about state that is never stored (typing,
    presence): there is no transaction to wait for. Best effort, like every bus publish."""
    groups = [user_group(u) for u in dict.fromkeys(user_ids)]
    groups += [conversation_group(c) for c in dict.fromkeys(conversation_ids)]
    if groups:
        await bus.send_async(groups, event)
