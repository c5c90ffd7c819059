"""publish_on_commit: the one way a domain event leaves a service for the bus."""

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from . import bus
from .groups import conversation_group, user_group


def publish_on_commit(
    event: dict[str, Any],
    *,
    user_ids: Iterable[str] = (),
    conversation_ids: Iterable[str] = (),
) -> None:
    """Publish `event` to the given users' and conversations' bus groups once the current
    transaction commits (at once outside a transaction). Nothing is sent on rollback."""
    groups = [user_group(u) for u in dict.fromkeys(user_ids)]
    groups += [conversation_group(c) for c in dict.fromkeys(conversation_ids)]
    if groups:
        transaction.on_commit(lambda: bus.send(groups, event))
