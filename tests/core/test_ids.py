"""Public ids (chatproject/core/ids.py): 24 hex digits from the OS's random source, cut from a
pool that is refilled one read at a time, never repeated across threads or a fork. Message ids
lead with the second they were made."""

import os
import threading
from unittest import mock

from chatproject.core import ids


def test_ids_are_24_hex_digits_and_distinct_across_refills():
    made = [ids.new_public_id() for _ in range(ids._POOL * 3 + 5)]
    assert all(ids.is_public_id(i) for i in made)
    assert len(set(made)) == len(made)


def test_the_pool_reads_the_random_source_once_per_pool_of_ids():
    ids._pool.clear()
    with mock.patch.object(ids.os, "urandom", wraps=os.urandom) as urandom:
        for _ in range(ids._POOL * 2):
            ids.new_public_id()
    assert urandom.call_count == 2
    assert all(call.args == (ids._POOL * 12,) for call in urandom.call_args_list)


def test_threads_never_share_an_id():
    found: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(ids.new_public_id() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(into,)) for into in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [i for into in found for i in into]
    assert len(set(made)) == len(made) == 20000


def test_a_forked_child_does_not_hand_out_its_parents_ids():
    ids._pool.clear()
    ids.new_public_id()  # the pool is full of ids the parent will hand out
    held = list(ids._pool)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        try:
            os.write(write, ids.new_public_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert ids.is_public_id(child_id) and child_id not in held


def test_message_ids_start_with_the_second_and_millisecond_they_were_made_and_end_random():
    with mock.patch.object(ids.time, "time_ns", return_value=0x6A2B3C4D * 10**9 + 999_999_999):
        made = [ids.new_message_id() for _ in range(1000)]
    assert all(ids.is_public_id(i) and i.startswith("6a2b3c4d03e7") for i in made)
    assert len({i[12:] for i in made}) == 1000


def test_message_ids_of_a_later_millisecond_sort_after_every_id_of_an_earlier_one():
    made = []
    for ns in (1_800_000_000_998_000_000, 1_800_000_000_999_000_000, 1_800_000_001_000_000_000):
        with mock.patch.object(ids.time, "time_ns", return_value=ns):
            made.append([ids.new_message_id() for _ in range(200)])
    assert max(made[0]) < min(made[1]) and max(made[1]) < min(made[2])


def test_message_ids_wrap_after_32_bits_of_seconds_keeping_their_shape():
    with mock.patch.object(ids.time, "time_ns", return_value=(2**32 + 5) * 10**9 + 7_000_000):
        made = ids.new_message_id()
    assert ids.is_public_id(made) and made.startswith("000000050007")
