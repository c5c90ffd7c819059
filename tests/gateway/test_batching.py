"""The send batcher's own rules, without a database: a batch whose connection was lost is
written once more; a second failure reaches every sender of the batch; up to SEND_WRITERS
batches are written at once, each on a writer thread that takes its next batch itself, and
batches in flight never share a conversation."""

import asyncio
import random
import threading
import time

import pytest
from django.db import OperationalError

from gateway import batching
from messaging.services import SendRequest, SendResult


def request(conversation: object, content: str = "") -> SendRequest:
    return SendRequest(user=None, conversation_id=conversation, content=content)


async def until(condition, seconds: float = 5.0) -> None:
    """Wait (the writers are threads) until `condition()` holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def __call__(self, requests):
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("server closed the connection unexpectedly")
        return [SendResult(created=True) for _ in requests]


class Gated:
    """A stand-in for the service on the writer threads: records each batch (its contents and
    its thread) and holds it until the test releases it."""

    def __init__(self) -> None:
        self.batches: list[list[tuple]] = []
        self.threads: list[str] = []
        self.gates: list[threading.Event] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, requests):
        gate = threading.Event()
        with self.lock:
            self.batches.append([(r.conversation_id, r.content) for r in requests])
            self.threads.append(threading.current_thread().name)
            self.gates.append(gate)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        assert gate.wait(10)
        with self.lock:
            self.in_flight -= 1
        return [SendResult(created=True) for _ in requests]

    def release(self, index: int) -> None:
        self.gates[index].set()


async def test_a_batch_that_lost_its_connection_is_written_once_more():
    flaky = Flaky(failures=1)
    result = await batching.SendBatcher(flaky).submit(request("c"))
    assert result.created and flaky.calls == 2


async def test_a_batch_that_fails_twice_fails_its_senders():
    flaky = Flaky(failures=2)
    batcher = batching.SendBatcher(flaky)
    with pytest.raises(OperationalError):
        await batcher.submit(request("c"))
    assert flaky.calls == 2 and batcher.idle


async def test_batches_are_written_on_a_writer_thread_that_takes_the_next_batch_itself(settings):
    """While a batch is written, the sends that arrive queue; the writer takes them all as its
    next batch as soon as it is free, with the event loop blocked (it does not wait for it)."""
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 1}
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    first = asyncio.ensure_future(batcher.submit(request("a", "1")))
    await until(lambda: len(gated.batches) == 1)
    rest = [asyncio.ensure_future(batcher.submit(request(c, n))) for c, n in [("a", "2"), ("b", "3")]]
    await asyncio.sleep(0)  # both queued
    gated.release(0)
    # The loop is blocked here (a sleep that is no await): the writer moves on by itself.
    deadline = time.monotonic() + 5
    while len(gated.batches) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert gated.batches == [[("a", "1")], [("a", "2"), ("b", "3")]]
    assert not first.done()  # its result waits for the loop
    gated.release(1)
    await until(lambda: all(f.done() for f in [first, *rest]))
    assert all(f.result().created for f in [first, *rest])
    assert gated.threads[0] == gated.threads[1] and gated.threads[0].startswith("db-write")
    assert gated.threads[0] != threading.current_thread().name
    assert batcher.idle and batcher.stats["batches"] == 2 and batcher.stats["largest"] == 2


async def test_a_send_into_a_conversation_in_flight_waits_and_others_go_at_once(settings):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    first = asyncio.ensure_future(batcher.submit(request("a", "1")))
    await until(lambda: len(gated.batches) == 1)
    later = [
        asyncio.ensure_future(batcher.submit(request(c, n))) for c, n in [("a", "2"), ("b", "3"), ("a", "4")]
    ]
    # "b" goes beside the batch in flight; both sends into "a" wait, in their order.
    await until(lambda: len(gated.batches) == 2)
    assert gated.batches == [[("a", "1")], [("b", "3")]]
    gated.release(1)
    await until(lambda: later[1].done())
    await asyncio.sleep(0.05)
    assert len(gated.batches) == 2  # "a" is still in flight
    gated.release(0)
    await until(lambda: len(gated.batches) == 3)
    assert gated.batches[2] == [("a", "2"), ("a", "4")]
    gated.release(2)
    await until(lambda: all(f.done() for f in [first, *later]))
    assert all(f.result().created for f in [first, *later])
    assert batcher.idle and batcher.stats["overlapped"] == 1


async def test_a_connections_sends_keep_their_order_across_conversations(settings):
    """A connection may have several sends queued (gateway/lanes.py): a later one into another
    conversation never goes in a batch ahead of an earlier one still waiting."""
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    first = asyncio.ensure_future(batcher.submit(request("a", "other-1")))
    await until(lambda: len(gated.batches) == 1)
    mine = [
        SendRequest(user=None, conversation_id=c, content=n, origin="conn-1")
        for c, n in [("a", "mine-1"), ("b", "mine-2")]
    ]
    later = [asyncio.ensure_future(batcher.submit(r)) for r in [*mine, request("c", "other-2")]]
    # "mine-1" waits for "a"; "mine-2" waits behind it though "b" is free; "other-2" goes.
    await until(lambda: len(gated.batches) == 2)
    assert gated.batches[1] == [("c", "other-2")]
    gated.release(1)
    await until(lambda: later[2].done())
    gated.release(0)
    await until(lambda: len(gated.batches) == 3)
    assert gated.batches[2] == [("a", "mine-1"), ("b", "mine-2")]
    gated.release(2)
    await until(lambda: all(f.done() for f in [first, *later]))
    assert batcher.idle


async def test_no_more_than_send_writers_batches_are_in_flight(settings):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    futures = []
    for conversation in "abc":
        futures.append(asyncio.ensure_future(batcher.submit(request(conversation))))
        await until(lambda: len(gated.batches) == min(len(futures), 2))
    await asyncio.sleep(0.05)
    assert [len(b) for b in gated.batches] == [1, 1]
    gated.release(0)
    await until(lambda: len(gated.batches) == 3)
    assert gated.batches[2] == [("c", "")]
    gated.release(1)
    gated.release(2)
    await until(lambda: all(f.done() for f in futures))
    assert gated.most_in_flight == 2 and all(f.result().created for f in futures)


@pytest.mark.parametrize("writers", [0, 1])
async def test_zero_or_one_writer_writes_one_batch_at_a_time(settings, writers):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": writers}
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    first = asyncio.ensure_future(batcher.submit(request("a")))
    await until(lambda: len(gated.batches) == 1)
    rest = [asyncio.ensure_future(batcher.submit(request(c))) for c in "bc"]
    await asyncio.sleep(0.05)
    assert len(gated.batches) == 1
    gated.release(0)
    await until(lambda: len(gated.batches) == 2)
    assert gated.batches[1] == [("b", ""), ("c", "")]
    gated.release(1)
    await until(lambda: all(f.done() for f in [first, *rest]))
    assert all(f.result().created for f in [first, *rest])


async def test_a_conversation_id_that_is_no_string_conflicts_with_nothing(settings):
    """The service refuses it; it must not wait for, or hold up, anything."""
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    first = asyncio.ensure_future(batcher.submit(request(["x"], "1")))
    await until(lambda: len(gated.batches) == 1)
    second = asyncio.ensure_future(batcher.submit(request(["x"], "2")))
    await until(lambda: len(gated.batches) == 2)
    assert gated.batches == [[(["x"], "1")], [(["x"], "2")]]
    gated.release(0)
    gated.release(1)
    await until(lambda: first.done() and second.done())
    assert first.result().created and second.result().created


async def test_a_batch_never_holds_more_than_send_batch_max(settings):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 1, "SEND_BATCH_MAX": 3}
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    first = asyncio.ensure_future(batcher.submit(request("a", "0")))
    await until(lambda: len(gated.batches) == 1)
    rest = [asyncio.ensure_future(batcher.submit(request("a", str(n)))) for n in range(1, 8)]
    await asyncio.sleep(0)
    for i in range(3):
        gated.release(i)
        await until(lambda i=i: len(gated.batches) == i + 2)
    gated.release(3)
    await until(lambda: all(f.done() for f in [first, *rest]))
    assert [len(b) for b in gated.batches] == [1, 3, 3, 1]
    assert [c for b in gated.batches for _a, c in b] == [str(n) for n in range(8)]


async def test_a_cancelled_sender_does_not_stop_its_batch():
    gated = Gated()
    batcher = batching.SendBatcher(gated)
    gone = asyncio.ensure_future(batcher.submit(request("a", "1")))
    await until(lambda: len(gated.batches) == 1)
    stays = asyncio.ensure_future(batcher.submit(request("a", "2")))
    await asyncio.sleep(0)
    gone.cancel()
    gated.release(0)
    await until(lambda: len(gated.batches) == 2)
    gated.release(1)
    assert (await stays).created
    await until(lambda: batcher.idle)


async def test_a_writer_with_nothing_to_write_ends_and_the_next_send_starts_one(monkeypatch):
    monkeypatch.setattr(batching, "WRITER_IDLE_SECONDS", 0.05)
    batcher = batching.SendBatcher(Flaky(failures=0))
    assert (await batcher.submit(request("a"))).created
    await until(lambda: batcher._writers == 0)
    assert (await batcher.submit(request("b"))).created


async def test_many_sends_into_many_conversations_are_each_written_once_in_order(settings):
    """Random arrivals and completions: every send gets its result, is written once, and each
    conversation's sends are written and answered in submission order, never two batches of one
    at once."""
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 3, "SEND_BATCH_MAX": 4}
    rng = random.Random(19)
    lock = threading.Lock()
    written: list[tuple] = []
    in_flight: set = set()
    overlaps = []

    def write(requests):
        conversations = {r.conversation_id for r in requests}
        with lock:
            overlaps.append(conversations & in_flight)
            in_flight.update(conversations)
            pause = rng.random() / 1000
        time.sleep(pause)
        with lock:
            written.extend((r.conversation_id, r.content) for r in requests)
            in_flight.difference_update(conversations)
        return [SendResult(created=True) for _ in requests]

    batcher = batching.SendBatcher(write)
    answered: list[tuple] = []

    async def send(conversation: str, content: str) -> None:
        await batcher.submit(request(conversation, content))
        answered.append((conversation, content))

    futures = []
    for n in range(300):
        futures.append(asyncio.ensure_future(send(rng.choice("abcdefgh"), str(n))))
        if rng.random() < 0.3:
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*futures), 10)
    assert not any(overlaps)
    assert sorted(int(content) for _c, content in written) == list(range(300))
    for conversation in "abcdefgh":
        for order in (written, answered):
            seen = [int(content) for c, content in order if c == conversation]
            assert seen == sorted(seen)
    assert batcher.idle


async def test_on_the_event_loop_batches_keep_each_conversations_order(settings):
    """Writers on the event loop (`write_async`): the same rules as writer threads."""
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 3, "SEND_BATCH_MAX": 4}
    rng = random.Random(5)
    written: list[tuple] = []
    in_flight: set = set()
    overlaps = []
    threads = set()

    async def write(requests):
        threads.add(threading.current_thread().name)
        conversations = {r.conversation_id for r in requests}
        overlaps.append(conversations & in_flight)
        in_flight.update(conversations)
        await asyncio.sleep(rng.random() / 1000)
        written.extend((r.conversation_id, r.content) for r in requests)
        in_flight.difference_update(conversations)
        return [SendResult(created=True) for _ in requests]

    batcher = batching.SendBatcher(write_async=write)
    answered: list[tuple] = []

    async def send(conversation: str, content: str) -> None:
        await batcher.submit(request(conversation, content))
        answered.append((conversation, content))

    futures = []
    for n in range(300):
        futures.append(asyncio.ensure_future(send(rng.choice("abcdefgh"), str(n))))
        if rng.random() < 0.3:
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*futures), 10)
    assert threads == {threading.current_thread().name}
    assert not any(overlaps) and batcher.stats["overlapped"] > 0
    assert sorted(int(content) for _c, content in written) == list(range(300))
    for conversation in "abcdefgh":
        for order in (written, answered):
            seen = [int(content) for c, content in order if c == conversation]
            assert seen == sorted(seen)
    assert batcher.idle and batcher._tasks == 0


async def test_on_the_event_loop_a_second_writer_starts_only_behind_a_backlog(settings, monkeypatch):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    monkeypatch.setattr(batching, "EXTRA_WRITER_BACKLOG", 3)
    gates: list[asyncio.Future] = []
    batches: list[list[str]] = []

    async def write(requests):
        batches.append([r.content for r in requests])
        gates.append(asyncio.get_running_loop().create_future())
        await gates[-1]
        return [SendResult(created=True) for _ in requests]

    batcher = batching.SendBatcher(write_async=write)
    sends = [asyncio.ensure_future(batcher.submit(request("a", "1")))]
    await until(lambda: len(batches) == 1)
    # Two more wait behind the batch in flight, in other conversations: no second writer yet.
    sends += [asyncio.ensure_future(batcher.submit(request(c, n))) for c, n in [("b", "2"), ("c", "3")]]
    await asyncio.sleep(0.05)
    assert batches == [["1"]]
    # The third makes a backlog of 3: a second writer takes all three beside the first batch.
    sends.append(asyncio.ensure_future(batcher.submit(request("d", "4"))))
    await until(lambda: len(batches) == 2)
    assert batches[1] == ["2", "3", "4"] and batcher.stats["overlapped"] == 1
    for gate in gates:
        gate.set_result(None)
    await asyncio.wait_for(asyncio.gather(*sends), 5)
    assert batcher.idle
