"""The bus: channel-layer groups, reached from sync services and from the event loop.

Services run in worker threads; publishing from there must neither block the thread on Redis nor
reorder events. When this process runs an event loop with the bridge (a server process), a
publish is handed to that loop with `run_coroutine_threadsafe`: tasks start in submission order
and the layer publishes in that order. Outside a server (management commands, the admin under
a sync server, tests) it falls back to `async_to_sync`.
"""

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

# Bus message type: the channel-layer envelope carries the target group and the domain event.
MESSAGE_TYPE = "chat.event"

_loop: asyncio.AbstractEventLoop | None = None
stats = {"published": 0, "publish_errors": 0}


def bind_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by the bridge when it starts (and stops) in this process's event loop."""
    global _loop
    _loop = loop


def envelope(group: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"type": MESSAGE_TYPE, "target": group, "event": event}


async def send_async(groups: list[str], event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    for group in groups:
        try:
            await layer.group_send(group, envelope(group, event))
            stats["published"] += 1
        except Exception:
            # The database already holds the data; clients recover it through history. Count
            # and log (ids only, never bodies) instead of failing the request that caused it.
            stats["publish_errors"] += 1
            logger.exception("bus publish failed: group=%s type=%s", group, event.get("type"))


def send(groups: list[str], event: dict[str, Any]) -> None:
    """Publish `event` to each group. Called on commit from sync code."""
    loop = _loop
    if loop is not None and loop.is_running():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(send_async(groups, event))
        else:
            asyncio.run_coroutine_threadsafe(send_async(groups, event), loop)
        return
    async_to_sync(send_async)(groups, event)
