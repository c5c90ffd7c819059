"""The one adapter from async transport code to the sync services and selectors."""

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

T = TypeVar("T")


async def call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a service or selector in the database thread and return its result."""
    return await database_sync_to_async(fn)(**kwargs)


_outside: ThreadPoolExecutor | None = None


async def call_outside(fn: Callable[..., T], /, *args: Any) -> T:
    """Run a blocking call that touches no database (an app's verification URL) on a small
    pool of its own (CHAT TENANT_VERIFY_WORKERS threads): the database thread is shared by
    every connection and must never wait on the network."""
    global _outside
    if _outside is None:
        _outside = ThreadPoolExecutor(settings.CHAT["TENANT_VERIFY_WORKERS"], thread_name_prefix="outside")
    return await asyncio.get_running_loop().run_in_executor(_outside, functools.partial(fn, *args))
