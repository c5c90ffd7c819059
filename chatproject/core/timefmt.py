"""Timestamps on the wire: ISO-8601 UTC with milliseconds, e.g. 2023-08-14T18:20:31.512Z."""

from datetime import UTC, datetime


def iso_ms(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
