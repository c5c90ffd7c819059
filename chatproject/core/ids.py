"""Public identifiers.

Every object a client sees carries a 24-hex-digit random id (96 bits from the OS's random
source, `os.urandom`), the shape of a MongoDB ObjectId so ExpressChat clients treat it as they
always did. Ids are not sequential, not guessable, and (with 96 random bits) unique across every
kind of object, which the ExpressChat web client relies on when it uses user, chat and group ids
as DOM ids on one page.
Integer primary keys stay inside the database.

Message ids (`new_message_id`) are the exception to "not sequential": their first 8 digits are
the second they were made (as in an ObjectId), the next 4 the millisecond within it, and the
other 12 are random (48 bits: not guessable, and two messages of one millisecond share an id
once in 2**48 pairs, which the unique index then refuses). A random id's index entry lands on a
random page of the index, so every send dirtied a page of its own, which the kernel and the
next checkpoint wrote out again, and split pages in the middle, left half empty; ids that grow
with time fill the index's last page (bench/README.md, session 9). A message's id thereby tells
when it was sent, which its `created_at` tells anyone who can read it anyway.
"""

import os
import re
import time

PUBLIC_ID_LENGTH = 24
_PUBLIC_ID_RE = re.compile(r"^[0-9a-f]{24}$")

# Ids are cut from one read of the OS's random source per _POOL of them, not one read each:
# `os.urandom` releases the GIL around its system call, and a thread that releases the GIL while
# the event loop's thread is busy waits up to the switch interval (5 ms) to take it back. The
# send batch's writer thread made one id per message, so a batch of 100 could wait 100 times
# (issue 19, session 5: 8.7% of the writer's py-spy samples were in `randbytes`). The ids are as
# random as before (the same source, 96 bits each); a forked child starts with an empty pool, so
# it never hands out its parent's ids.
_POOL = 256
_pool: list[str] = []


def _refill() -> None:
    digits = os.urandom(_POOL * PUBLIC_ID_LENGTH // 2).hex()
    _pool.extend(digits[i : i + PUBLIC_ID_LENGTH] for i in range(0, len(digits), PUBLIC_ID_LENGTH))


os.register_at_fork(after_in_child=_pool.clear)


def new_public_id() -> str:
    # `list.pop` is atomic under the GIL: two threads never get the same id. Two threads that
    # find the pool empty at once both refill it, which only wastes a read.
    while True:
        try:
            return _pool.pop()
        except IndexError:
            _refill()


def is_public_id(value: object) -> bool:
    return isinstance(value, str) and _PUBLIC_ID_RE.fullmatch(value) is not None


def new_message_id() -> str:
    """A message's public id: the creation time in seconds (8 hex digits, wrapping in 2106) and
    the millisecond within it (4), then 48 random bits from the same pool as `new_public_id`."""
    seconds, rest = divmod(time.time_ns(), 1_000_000_000)
    return f"{seconds & 0xFFFFFFFF:08x}{rest // 1_000_000:04x}{new_public_id()[12:]}"
