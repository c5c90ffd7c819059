"""The Engine.IO 4 session's outbound queue (gateway/transports/send_queue.py) behaves like the
`asyncio.Queue` python-engineio would make, for the part of the interface python-engineio uses:
FIFO, a waiting `get`, cancellation that loses nothing, `task_done`/`join`; and it holds no
container while it is idle."""

import asyncio

import pytest

from gateway.transports.send_queue import SendQueue


async def test_items_come_out_in_order():
    queue = SendQueue()
    for item in ("a", "b", None):
        await queue.put(item)
    assert queue.qsize() == 3
    assert [queue.get_nowait() for _ in range(3)] == ["a", "b", None]
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_get_waits_for_a_put():
    queue = SendQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("packet")
    assert await getter == "packet"
    assert queue.empty()


async def test_waiting_getters_are_served_in_order():
    queue = SendQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await first == 1
    assert await second == 2


async def test_a_cancelled_get_loses_no_item():
    queue = SendQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    queue.put_nowait("kept")
    assert await queue.get() == "kept"


async def test_a_getter_woken_then_cancelled_passes_the_item_on():
    queue = SendQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await second == "only"
    assert first.cancelled()


async def test_a_get_timed_out_by_wait_for_loses_no_item():
    queue = SendQueue()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("after")
    assert await asyncio.wait_for(queue.get(), 1) == "after"


async def test_join_waits_for_every_task_done():
    queue = SendQueue()
    await queue.join()  # nothing put: returns at once
    queue.put_nowait("a")
    queue.put_nowait("b")
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    queue.put_nowait("c")  # a put after a join: the next join waits again
    again = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    assert not again.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(again, 1)


async def test_task_done_more_than_put_is_an_error():
    queue = SendQueue()
    with pytest.raises(ValueError):
        queue.task_done()


async def test_an_idle_queue_holds_no_container():
    queue = SendQueue()
    queue.put_nowait("x")
    queue.get_nowait()
    queue.task_done()
    getter = asyncio.ensure_future(queue.get())
    queue.put_nowait("y")
    assert await getter == "y"
    assert (queue._items, queue._getters, queue._finished) == (None, None, None)
