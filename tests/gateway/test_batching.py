"""The send batcher's own rules, without a database: a batch whose connection was lost is
written once more; a second failure reaches every sender of the batch."""

import pytest
from django.db import OperationalError

from gateway import batching
from messaging.services import SendResult


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self, fn, /, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("server closed the connection unexpectedly")
        return [SendResult(created=True) for _ in kwargs["requests"]]


async def test_a_batch_that_lost_its_connection_is_written_once_more(monkeypatch):
    flaky = Flaky(failures=1)
    monkeypatch.setattr(batching, "call", flaky)
    result = await batching.SendBatcher().submit(object())
    assert result.created and flaky.calls == 2


async def test_a_batch_that_fails_twice_fails_its_senders(monkeypatch):
    flaky = Flaky(failures=2)
    monkeypatch.setattr(batching, "call", flaky)
    with pytest.raises(OperationalError):
        await batching.SendBatcher().submit(object())
    assert flaky.calls == 2
