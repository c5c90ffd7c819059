"""Socket.IO binary packets (BINARY_EVENT `5`, BINARY_ACK `6`), the same for both framings.

A binary packet travels as a JSON header whose bytes arguments are placeholders
`{"_placeholder": true, "num": n}`, followed by its attachments (one Engine.IO binary message
each, in order). `Reassembly` holds one header until its attachments have arrived, and puts the
bytes in place. Strict where the JavaScript parsers are lenient:

- the header declares at least one attachment, and its placeholders are exactly `0 .. n-1`, each
  once (any object with a `_placeholder` key must be a placeholder and nothing else);
- what is held is bounded: the header and attachments together are counted against two limits.
  Past `event_limit` (the protocols' limit on one event) the packet is still read to its end, but
  its attachments are dropped as they arrive, and the event is flagged oversize (answered with
  the protocol's `payload_too_large`, nothing run), as a text event over that limit is; past
  `hard_limit` (the transport ceiling) `TooLarge` is raised and the transport drops the
  connection. A header that declares more than `max_attachments` is flagged oversize too.

So a session that announces attachments and never sends them holds at most `event_limit` bytes
until it ends (the transports drop the pending packet with the session).
"""

from __future__ import annotations

from typing import Any


class BinaryError(ValueError):
    """A malformed binary packet. The message names the fault, never the data (safe to log)."""


class TooLarge(Exception):
    """The packet and its attachments passed the transport ceiling."""


PLACEHOLDER = "_placeholder"


def _placeholder_num(value: dict) -> int:
    if value.keys() != {PLACEHOLDER, "num"} or value[PLACEHOLDER] is not True:
        raise BinaryError("bad placeholder")
    num = value["num"]
    if not isinstance(num, int) or isinstance(num, bool):
        raise BinaryError("bad placeholder")
    return num


def find_placeholders(data: Any, count: int) -> list[tuple[list | dict, int | str, int]]:
    """Where each attachment goes: (container, key, num) for every placeholder in `data`.

    Raises BinaryError unless the placeholders are exactly 0 .. count-1, each used once. The walk
    is iterative: a header nested as deep as the JSON parser allows cannot exhaust the stack.
    """
    if isinstance(data, dict) and PLACEHOLDER in data:
        raise BinaryError("bad placeholder")  # the packet's data itself: never an argument
    slots: list[tuple[list | dict, int | str, int]] = []
    seen: set[int] = set()
    stack = [data]
    while stack:
        container = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, dict):
                if PLACEHOLDER in value:
                    num = _placeholder_num(value)
                    if not 0 <= num < count or num in seen:
                        raise BinaryError("placeholder out of range or repeated")
                    seen.add(num)
                    slots.append((container, key, num))
                else:
                    stack.append(value)
            elif isinstance(value, list):
                stack.append(value)
    if len(seen) != count:
        raise BinaryError("attachment count does not match the placeholders")
    return slots


class Reassembly:
    """One binary packet waiting for its attachments.

    `data` is the decoded JSON of the header (it is filled in place), `count` the attachments it
    declares, `header_bytes` its size in UTF-8 bytes.
    """

    def __init__(
        self,
        data: Any,
        count: int,
        *,
        header_bytes: int,
        max_attachments: int,
        event_limit: int,
        hard_limit: int,
    ) -> None:
        if count < 1:
            raise BinaryError("binary packet without attachments")
        if header_bytes > hard_limit:
            raise TooLarge
        self.slots = find_placeholders(data, count)
        self.data = data
        self.count = count
        self.event_limit = event_limit
        self.hard_limit = hard_limit
        self.total = header_bytes
        self.parts: list[bytes] = []
        self.received = 0
        self.oversize = count > max_attachments or header_bytes > event_limit

    @property
    def held(self) -> int:
        """Attachment bytes held now (at most `event_limit`)."""
        return sum(len(part) for part in self.parts)

    def add(self, attachment: bytes) -> bool:
        """Take the next attachment; True when it was the last one."""
        self.received += 1
        self.total += len(attachment)
        if self.total > self.hard_limit:
            raise TooLarge
        if self.total > self.event_limit:
            self.oversize = True
        if self.oversize:
            self.parts.clear()  # read to the end, never held: the event is refused anyway
        else:
            self.parts.append(bytes(attachment))
        return self.received == self.count

    def result(self) -> Any:
        """The packet's data with its attachments in place (oversize: left as placeholders,
        since nothing will run it)."""
        if not self.oversize:
            for container, key, num in self.slots:
                container[key] = self.parts[num]
            self.parts = []
        return self.data
