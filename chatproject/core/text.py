"""Checks on text that arrives from clients before it reaches the database."""


def is_storable(value: str) -> bool:
    """False for text no database column can hold: NUL (PostgreSQL refuses it) and lone
    surrogates such as "\\ud800" (valid in JSON, not encodable as UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
