"""The send batcher's own rules, without a database: a batch whose connection was lost is
written once more; a second failure reaches every sender of the batch; up to SEND_WRITERS
batches are written at once, and batches in flight never share a conversation."""

import asyncio
import random

import pytest
from django.db import OperationalError

from gateway import batching
from messaging.services import SendRequest, SendResult


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self, fn, /, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("server closed the connection unexpectedly")
        return [SendResult(created=True) for _ in kwargs["requests"]]


def request(conversation: object, content: str = "") -> SendRequest:
    return SendRequest(user=None, conversation_id=conversation, content=content)


class Gated:
    """A stand-in for the writer threads: records each batch (its contents) and holds it until
    the test releases it."""

    def __init__(self) -> None:
        self.batches: list[list[tuple]] = []
        self.gates: list[asyncio.Event] = []
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, fn, /, **kwargs):
        requests = kwargs["requests"]
        self.batches.append([(r.conversation_id, r.content) for r in requests])
        gate = asyncio.Event()
        self.gates.append(gate)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await gate.wait()
        finally:
            self.in_flight -= 1
        return [SendResult(created=True) for _ in requests]

    async def release(self, index: int) -> None:
        self.gates[index].set()
        for _ in range(5):
            await asyncio.sleep(0)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_batch_that_lost_its_connection_is_written_once_more(monkeypatch):
    flaky = Flaky(failures=1)
    monkeypatch.setattr(batching, "call_write", flaky)
    result = await batching.SendBatcher().submit(request("c"))
    assert result.created and flaky.calls == 2


async def test_a_batch_that_fails_twice_fails_its_senders(monkeypatch):
    flaky = Flaky(failures=2)
    monkeypatch.setattr(batching, "call_write", flaky)
    with pytest.raises(OperationalError):
        await batching.SendBatcher().submit(request("c"))
    assert flaky.calls == 2


async def test_a_send_into_a_conversation_in_flight_waits_and_others_go_at_once(monkeypatch, settings):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    gated = Gated()
    monkeypatch.setattr(batching, "call_write", gated)
    batcher = batching.SendBatcher()
    first = asyncio.ensure_future(batcher.submit(request("a", "1")))
    await settle()
    later = [
        asyncio.ensure_future(batcher.submit(request(c, n))) for c, n in [("a", "2"), ("b", "3"), ("a", "4")]
    ]
    await settle()
    # "b" went beside the batch in flight; both sends into "a" wait, in their order.
    assert gated.batches == [[("a", "1")], [("b", "3")]]
    await gated.release(1)
    assert gated.batches == [[("a", "1")], [("b", "3")]]  # "a" is still in flight
    await gated.release(0)
    assert gated.batches[2] == [("a", "2"), ("a", "4")]
    await gated.release(2)
    assert all(f.done() and f.result().created for f in [first, *later])
    assert batcher.idle and batcher.stats["overlapped"] == 1


async def test_no_more_than_send_writers_batches_are_in_flight(monkeypatch, settings):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    gated = Gated()
    monkeypatch.setattr(batching, "call_write", gated)
    batcher = batching.SendBatcher()
    futures = []
    for conversation in "abc":
        futures.append(asyncio.ensure_future(batcher.submit(request(conversation))))
        await settle()
    assert [len(b) for b in gated.batches] == [1, 1]
    await gated.release(0)
    assert gated.batches[2] == [("c", "")]
    await gated.release(1)
    await gated.release(2)
    assert gated.most_in_flight == 2 and all(f.result().created for f in futures)


@pytest.mark.parametrize("writers", [0, 1])
async def test_zero_or_one_writer_writes_one_batch_at_a_time(monkeypatch, settings, writers):
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": writers}
    gated = Gated()
    monkeypatch.setattr(batching, "call_write", gated)
    batcher = batching.SendBatcher()
    first = asyncio.ensure_future(batcher.submit(request("a")))
    await settle()
    rest = [asyncio.ensure_future(batcher.submit(request(c))) for c in "bc"]
    await settle()
    assert len(gated.batches) == 1
    await gated.release(0)
    assert gated.batches[1] == [("b", ""), ("c", "")]
    await gated.release(1)
    assert all(f.result().created for f in [first, *rest])


async def test_a_conversation_id_that_is_no_string_conflicts_with_nothing(monkeypatch, settings):
    """The service refuses it; it must not wait for, or hold up, anything."""
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 2}
    gated = Gated()
    monkeypatch.setattr(batching, "call_write", gated)
    batcher = batching.SendBatcher()
    first = asyncio.ensure_future(batcher.submit(request(["x"], "1")))
    await settle()
    second = asyncio.ensure_future(batcher.submit(request(["x"], "2")))
    await settle()
    assert gated.batches == [[(["x"], "1")], [(["x"], "2")]]
    await gated.release(0)
    await gated.release(1)
    assert first.result().created and second.result().created


async def test_many_sends_into_many_conversations_are_each_written_once_in_order(monkeypatch, settings):
    """Random arrivals and completions: every send gets its result, is written once, and each
    conversation's sends are written in submission order, never two batches of one at once."""
    settings.CHAT = {**settings.CHAT, "SEND_WRITERS": 3, "SEND_BATCH_MAX": 4}
    rng = random.Random(19)
    written: list[tuple] = []
    in_flight: set = set()

    async def write(fn, /, **kwargs):
        conversations = {r.conversation_id for r in kwargs["requests"]}
        assert not conversations & in_flight
        in_flight.update(conversations)
        await asyncio.sleep(rng.random() / 1000)
        written.extend((r.conversation_id, r.content) for r in kwargs["requests"])
        in_flight.difference_update(conversations)
        return [SendResult(created=True) for _ in kwargs["requests"]]

    monkeypatch.setattr(batching, "call_write", write)
    batcher = batching.SendBatcher()
    futures = []
    for n in range(300):
        futures.append(asyncio.ensure_future(batcher.submit(request(rng.choice("abcdefgh"), str(n)))))
        if rng.random() < 0.3:
            await asyncio.sleep(0)
    await asyncio.gather(*futures)
    assert sorted(int(content) for _c, content in written) == list(range(300))
    for conversation in "abcdefgh":
        order = [int(content) for c, content in written if c == conversation]
        assert order == sorted(order)
    assert batcher.idle
