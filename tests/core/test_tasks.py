"""spawn: a task nobody else holds is kept until it ends."""

import asyncio
import gc

from chatproject.core import tasks


async def test_a_spawned_task_survives_collection_and_is_let_go_when_done():
    gate = asyncio.Event()
    done = []

    async def work():
        await gate.wait()
        done.append(True)

    before = tasks.running()
    tasks.spawn(work())  # no reference kept here
    await asyncio.sleep(0)
    gc.collect()
    assert tasks.running() == before + 1
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert done == [True]
    assert tasks.running() == before


async def test_spawn_on_a_given_loop_from_a_timer_callback():
    loop = asyncio.get_running_loop()
    finished = loop.create_future()

    async def work():
        finished.set_result("ran")

    loop.call_later(0.01, lambda: tasks.spawn(work(), loop))
    assert await asyncio.wait_for(finished, 1) == "ran"
