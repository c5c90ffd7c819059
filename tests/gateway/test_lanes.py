"""gateway/lanes.py: a connection's pipelined events, driven by hand (no server, no database)."""

import asyncio

import pytest

from gateway import lanes


class Event:
    """A pipelined event as a transport runs it: it may park (its send queued), then waits to be
    finished by the test, then answers in its turn; what happened is recorded in `log`."""

    def __init__(self, name: str, log: list, *, parks: bool = True, fails: bool = False) -> None:
        self.name, self.log, self.parks, self.fails = name, log, parks, fails
        self.finish = asyncio.get_running_loop().create_future()

    async def __call__(self) -> None:
        self.log.append(f"{self.name} start")
        if self.parks:
            lanes.parked()
        await self.finish
        if self.fails:
            raise RuntimeError(self.name)
        await lanes.turn()
        self.log.append(f"{self.name} answered")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_parked_event_lets_the_reader_go_on_and_answers_stay_in_order():
    lane, log = lanes.Lane(16), []
    first, second = Event("1", log), Event("2", log)
    await lanes.run(lane, first)  # returns once parked, long before it is finished
    await lanes.run(lane, second)
    assert log == ["1 start", "2 start"] and len(lane.entries) == 2
    second.finish.set_result(None)  # its batch came back first: it still answers second
    await settle()
    assert log == ["1 start", "2 start"]
    first.finish.set_result(None)
    await settle()
    assert log == ["1 start", "2 start", "1 answered", "2 answered"]
    assert not lane.entries


async def test_an_event_that_does_not_park_holds_the_reader_until_it_is_done():
    lane, log = lanes.Lane(16), []
    first, refused = Event("1", log), Event("refused", log, parks=False)
    await lanes.run(lane, first)
    reader = asyncio.ensure_future(lanes.run(lane, refused))
    refused.finish.set_result(None)
    await settle()
    assert not reader.done()  # refused at once, but answers after the send before it
    first.finish.set_result(None)
    await asyncio.wait_for(reader, 1)
    assert log == ["1 start", "refused start", "1 answered", "refused answered"]


async def test_other_events_wait_until_the_lane_is_drained():
    lane, log = lanes.Lane(16), []
    first = Event("1", log)
    await lanes.run(lane, first)
    other = asyncio.ensure_future(lanes.drained(lane))
    await settle()
    assert not other.done()
    first.finish.set_result(None)
    await asyncio.wait_for(other, 1)
    assert log == ["1 start", "1 answered"]
    await asyncio.wait_for(lanes.drained(lane), 1)  # empty: at once
    await asyncio.wait_for(lanes.drained(None), 1)


async def test_drained_returns_at_once_inside_a_pipelined_event():
    lane, log = lanes.Lane(16), []
    first = Event("1", log)
    await lanes.run(lane, first)
    seen = []

    async def inside() -> None:
        lanes.parked()
        await asyncio.wait_for(lanes.drained(lane), 1)  # would wait for itself otherwise
        seen.append("drained")

    await lanes.run(lane, inside)
    await settle()
    assert seen == ["drained"]
    first.finish.set_result(None)
    await settle()
    assert not lane.entries


async def test_the_reader_waits_for_the_oldest_at_the_limit():
    lane, log = lanes.Lane(2), []
    events = [Event(str(i), log) for i in range(3)]
    await lanes.run(lane, events[0])
    await lanes.run(lane, events[1])
    third = asyncio.ensure_future(lanes.run(lane, events[2]))
    await settle()
    assert not third.done() and log == ["0 start", "1 start"]
    events[0].finish.set_result(None)
    await asyncio.wait_for(third, 1)
    assert log == ["0 start", "1 start", "0 answered", "2 start"]
    for event in events[1:]:
        event.finish.set_result(None)
    await settle()
    assert log[-2:] == ["1 answered", "2 answered"] and not lane.entries


async def test_a_failed_event_still_ends_after_the_one_before_it():
    lane, log = lanes.Lane(16), []
    first, failing, third = Event("1", log), Event("2", log, fails=True), Event("3", log)
    for event in (first, failing, third):
        await lanes.run(lane, event)
    failing.finish.set_result(None)
    third.finish.set_result(None)
    await settle()
    assert log == ["1 start", "2 start", "3 start"]  # 3 waits for 2, which waits for 1
    first.finish.set_result(None)
    await settle()
    assert log == ["1 start", "2 start", "3 start", "1 answered", "3 answered"]
    assert not lane.entries


async def test_a_cancelled_waiter_does_not_cancel_what_others_wait_for():
    lane, log = lanes.Lane(16), []
    first = Event("1", log)
    await lanes.run(lane, first)
    waiter = asyncio.ensure_future(lanes.drained(lane))
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    second = Event("2", log)
    await lanes.run(lane, second)
    first.finish.set_result(None)
    second.finish.set_result(None)
    await settle()
    assert log == ["1 start", "2 start", "1 answered", "2 answered"]


async def test_outside_a_lane_parked_and_turn_do_nothing():
    lanes.parked()
    await asyncio.wait_for(lanes.turn(), 1)
