"""The one adapter from async transport code to the sync services and selectors."""

from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async

T = TypeVar("T")


async def call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a service or selector in the database thread and return its result."""
    return await database_sync_to_async(fn)(**kwargs)
