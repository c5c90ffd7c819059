"""What a message may hold: content, caption, emoji-only messages, kinds, client message ids.
Pure checks raising `ApplicationError`; shared by sending and edits."""

from __future__ import annotations

import unicodedata

from django.conf import settings

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.text import is_storable

from ..models import Message

CLIENT_MESSAGE_ID_MAX = 64


def _validate_content(content: object) -> str:
    if not isinstance(content, str):
        raise ApplicationError(ErrorCode.INVALID, "Content must be a string.", {"field": "content"})
    if not is_storable(content):
        raise ApplicationError(
            ErrorCode.INVALID, "Content contains characters that cannot be stored.", {"field": "content"}
        )
    if not content.strip():
        raise ApplicationError(ErrorCode.INVALID, "Content must not be empty.", {"field": "content"})
    maximum = settings.CHAT["MAX_MESSAGE_LENGTH"]
    if len(content) > maximum:
        raise ApplicationError(
            ErrorCode.INVALID,
            f"Content is longer than {maximum} characters.",
            {"field": "content", "max_length": maximum},
        )
    return content


def _validate_client_message_id(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > CLIENT_MESSAGE_ID_MAX
        or not is_storable(value)
    ):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"client_message_id must be a string of 1 to {CLIENT_MESSAGE_ID_MAX} characters.",
            {"field": "client_message_id"},
        )
    return value


# What a client may send (system messages are the server's).
SENDABLE_KINDS = sorted(k for k in Message.Kind.values if k != Message.Kind.SYSTEM)


def _validate_kind(message_kind: object, attachment_id: object) -> tuple[str, str | None]:
    """The message kind a send asks for, and its attachment's id. A media kind needs an
    attachment; an attachment without a kind makes a media message of the upload's own kind
    (decided when the upload is found); other kinds take none."""
    choices = SENDABLE_KINDS
    if message_kind is not None and (not isinstance(message_kind, str) or message_kind not in choices):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"kind must be one of {', '.join(choices)}.",
            {"field": "kind", "choices": choices},
        )
    if attachment_id is None:
        if message_kind in Message.MEDIA_KINDS:
            raise ApplicationError(
                ErrorCode.INVALID,
                f"A {message_kind} message needs an attachment_id.",
                {"field": "attachment_id"},
            )
        return message_kind or Message.Kind.TEXT, None
    if message_kind is not None and message_kind not in Message.MEDIA_KINDS:
        raise ApplicationError(
            ErrorCode.INVALID, f"A {message_kind} message takes no attachment.", {"field": "attachment_id"}
        )
    if not isinstance(attachment_id, str):
        raise ApplicationError(
            ErrorCode.INVALID, "attachment_id must be a string.", {"field": "attachment_id"}
        )
    return message_kind or "", attachment_id  # "": the upload's kind, set by _attachments_take


def _validate_caption(content: object) -> str:
    """A media message's text: optional (None or ""), otherwise the rules of a text message."""
    if content is None or content == "":
        return ""
    return _validate_content(content)


# Characters that make up emoji besides the pictographs themselves (category So): joiners,
# variation selectors, skin tones, keycaps and the tags of subdivision flags.
_EMOJI_JOINERS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}
_KEYCAP_BASES = set("0123456789#*")


def _is_emoji_only(text: str) -> bool:
    for i, c in enumerate(text):
        code = ord(c)
        if (
            unicodedata.category(c) == "So"
            or c in _EMOJI_JOINERS
            or 0x1F3FB <= code <= 0x1F3FF
            or 0xE0020 <= code <= 0xE007F
        ):
            continue
        if c in _KEYCAP_BASES and "\u20e3" in text[i + 1 : i + 3]:
            continue
        return False
    return True


def _validate_emoji_message(content: object) -> str:
    maximum = settings.CHAT["EMOJI_MESSAGE_MAX_LENGTH"]
    if not isinstance(content, str) or not content or len(content) > maximum or not _is_emoji_only(content):
        raise ApplicationError(
            ErrorCode.INVALID,
            f"An emoji message holds 1 to {maximum} emoji characters and nothing else.",
            {"field": "content", "max_length": maximum},
        )
    return content


def _validate_body(kind: str, content: object) -> str:
    """The content a message of this kind may hold ("" kind: media, decided later)."""
    if kind == Message.Kind.EMOJI:
        return _validate_emoji_message(content)
    if kind in Message.MEDIA_KINDS or kind == "":
        return _validate_caption(content)
    return _validate_content(content)
