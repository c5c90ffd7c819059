"""Wire timestamps: ISO-8601 in UTC with milliseconds (truncated, not rounded) and a Z."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chatproject.core.timefmt import iso_ms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2023, 8, 14, 18, 20, 31, 512999, tzinfo=UTC), "2023-08-14T18:20:31.512Z"),
        (datetime(2023, 8, 14, 18, 20, 31, tzinfo=UTC), "2023-08-14T18:20:31.000Z"),
        (datetime(2023, 8, 14, 23, 59, 59, 999999, tzinfo=UTC), "2023-08-14T23:59:59.999Z"),
        (
            datetime(2023, 8, 15, 1, 20, 31, 7000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2023-08-14T19:50:31.007Z",
        ),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "9999-12-31T23:59:59.000Z"),
        (datetime(999, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "999-01-02T03:04:05.006Z"),  # as before
    ],
)
def test_times_are_written_in_utc_with_milliseconds(value, expected):
    assert iso_ms(value) == expected


def test_none_stays_none():
    assert iso_ms(None) is None


def test_the_last_instant_formatted_is_reused_only_for_the_same_instant():
    first = datetime(2026, 12, 6, 15, 4, 16, 43914, tzinfo=UTC)
    same_elsewhere = first.astimezone(timezone(timedelta(hours=-7)))
    a_millisecond_later = first + timedelta(milliseconds=1)
    assert iso_ms(first) == "2026-12-06T15:04:16.043Z"
    assert iso_ms(same_elsewhere) == "2026-12-06T15:04:16.043Z"
    assert iso_ms(a_millisecond_later) == "2026-12-06T15:04:16.044Z"
    assert iso_ms(first) == "2026-12-06T15:04:16.043Z"
    naive = datetime(2026, 12, 6, 15, 4, 16, 43914)  # noqa: DTZ001 - never equal to an aware one
    assert iso_ms(naive) == naive.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
