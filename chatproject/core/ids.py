"""Public identifiers.

Every object a client sees carries a 24-hex-digit random id (96 bits from `secrets`), the shape
of a MongoDB ObjectId so ExpressChat clients treat it as they always did. Ids are not
sequential, not guessable, and (with 96 random bits) unique across every kind of object, which
the ExpressChat web client relies on when it uses user, chat and group ids as DOM ids on one page.
Integer primary keys stay inside the database.
"""

import re
import secrets

PUBLIC_ID_LENGTH = 24
_PUBLIC_ID_RE = re.compile(r"^[0-9a-f]{24}$")


def new_public_id() -> str:
    return secrets.token_hex(PUBLIC_ID_LENGTH // 2)


def is_public_id(value: object) -> bool:
    return isinstance(value, str) and _PUBLIC_ID_RE.fullmatch(value) is not None
