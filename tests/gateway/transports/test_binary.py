"""gateway/transports/binary.py: placeholders, reassembly and its bounds (pure)."""

import pytest

from gateway.transports.binary import BinaryError, Reassembly, TooLarge, find_placeholders


def ph(num):
    return {"_placeholder": True, "num": num}


def make(data, count, **limits):
    options = {"header_bytes": 10, "max_attachments": 3, "event_limit": 100, "hard_limit": 1000, **limits}
    return Reassembly(data, count, **options)


def test_attachments_replace_their_placeholders_wherever_they_are():
    data = ["up", ph(2), {"a": [ph(0), {"b": ph(1)}]}, "😀"]
    reassembly = make(data, 3)
    assert [reassembly.add(part) for part in (b"zero", bytearray(b"one"), b"two")] == [False, False, True]
    assert reassembly.result() == ["up", b"two", {"a": [b"zero", {"b": b"one"}]}, "😀"]


@pytest.mark.parametrize(
    "data, count",
    [
        (["x"], 1),  # fewer placeholders than declared
        (["x", ph(0), ph(1)], 1),  # more
        (["x", ph(0), ph(0)], 2),  # repeated
        (["x", ph(-1)], 1),  # negative (Python would index from the end)
        (["x", ph(True)], 1),
        (["x", ph(0.0)], 1),
        (["x", {"_placeholder": True}], 1),
        (["x", {"_placeholder": "yes", "num": 0}], 1),
        (["x", {"_placeholder": True, "num": 0, "more": 1}], 1),
        (ph(0), 1),  # the packet's data itself
        (["x", ph(0)], 0),  # nothing declared
    ],
)
def test_placeholders_must_be_exactly_zero_to_n_minus_one_each_once(data, count):
    with pytest.raises(BinaryError):
        make(data, count)


def test_a_header_nested_as_deep_as_json_allows_does_not_exhaust_the_stack():
    data = ["x", ph(0)]
    for _ in range(50_000):
        data = [data]
    assert len(find_placeholders(data, 1)) == 1


def test_past_the_event_limit_nothing_is_held_and_the_packet_is_oversize():
    reassembly = make(["x", ph(0), ph(1), ph(2)], 3)
    reassembly.add(b"a" * 80)
    assert (reassembly.held, reassembly.oversize) == (80, False)
    reassembly.add(b"b" * 20)  # 10 + 100: over 100
    assert (reassembly.held, reassembly.oversize) == (0, True)
    assert reassembly.add(b"c") is True
    assert reassembly.result() == ["x", ph(0), ph(1), ph(2)]  # left as is: nothing runs it


def test_more_attachments_than_allowed_are_oversize_from_the_header():
    reassembly = make(["x", *(ph(n) for n in range(4))], 4)
    assert reassembly.oversize
    reassembly.add(b"a")
    assert reassembly.held == 0


def test_past_the_hard_limit_it_is_too_large():
    with pytest.raises(TooLarge):
        make(["x", ph(0)], 1, header_bytes=1001)
    reassembly = make(["x", ph(0), ph(1)], 2)
    reassembly.add(b"a" * 990)
    with pytest.raises(TooLarge):
        reassembly.add(b"b")
