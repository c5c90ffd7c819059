"""The gateway's start-up setting of the cyclic garbage collector (gateway/asgi.py)."""

import gc

import pytest

from gateway import asgi


@pytest.fixture
def collector(monkeypatch):
    """The collector as it was, restored after the test; the once-per-process mark cleared."""
    thresholds = gc.get_threshold()
    monkeypatch.setattr(asgi, "_collector_done", False)
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_startup_sets_the_thresholds_and_freezes_what_startup_made(collector, settings):
    settings.CHAT = {**settings.CHAT, "GC_THRESHOLD": 12345}
    gc.unfreeze()
    _, middle, _ = gc.get_threshold()
    asgi.collector_tuned()
    assert gc.get_threshold() == (12345, middle, asgi.OLDEST_AFTER)
    assert asgi.OLDEST_AFTER > 10  # full collections rarer than Python's default
    assert gc.get_freeze_count() > 0


def test_collector_is_tuned_once_per_process(collector, settings):
    settings.CHAT = {**settings.CHAT, "GC_THRESHOLD": 12345}
    gc.unfreeze()
    asgi.collector_tuned()
    frozen = gc.get_freeze_count()
    settings.CHAT = {**settings.CHAT, "GC_THRESHOLD": 999}
    asgi.collector_tuned()
    assert gc.get_freeze_count() == frozen
    assert gc.get_threshold()[0] == 12345


def test_zero_leaves_python_defaults(collector, settings):
    settings.CHAT = {**settings.CHAT, "GC_THRESHOLD": 0}
    gc.unfreeze()
    before = gc.get_threshold()
    asgi.collector_tuned()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
