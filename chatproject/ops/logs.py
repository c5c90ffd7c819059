"""Log records without secrets, and JSON lines when LOG_FORMAT=json.

`RedactSecretsFilter` sits on the console handler (settings.LOGGING), so it sees every record
that is written, whatever logger it came from; `install_server_log_redaction` adds it to the
handlers uvicorn installs for its own and its access log. Redaction keeps a
record's shape (the format string and each argument are redacted separately) because some
formatters, uvicorn's access formatter among them, read `record.args` positionally.

What is redacted: values of `token`, `access_token`/`accessToken`, `refresh_token`/
`refreshToken`, `password`, `Authorization` and seed 002's `userId`/`customerID`/`vendorID`
(id handles there, docs/protocols/roomtoken.md) in query strings, headers, JSON and reprs;
`Bearer <credential>`; anything shaped like a JWT (`eyJ...`); and the id handles of seed 001's
app in `/user/<handle>` paths (docs/protocols/privatechat.md). Message bodies cannot be
recognised by shape: keeping them out of logs is the callers' rule (log ids and codes).
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key=value, key: value, "key": "value", 'key': 'value' (query strings, headers, JSON, reprs)
    (
        re.compile(
            r"""((?:access_?token|refresh_?token|token|password|authorization|userid|customerid|vendorid)["']?\s*[=:]\s*(?:b?["'])?)"""
            r"""(?!\[REDACTED\])(?:bearer\s+)?[^\s&"',;)}\]]+""",
            re.IGNORECASE,
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"\bbearer\s+(?!\[REDACTED\])[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), "Bearer " + REDACTED),
    (re.compile(r"eyJ[A-Za-z0-9_\-]{4,}(?:\.[A-Za-z0-9_\-]*){0,2}"), REDACTED),
    # Id handles of seed 001's app (gateway/protocols/privatechat): the path of GET /user/<id>
    # and the query's userId are the app's only credential.
    (re.compile(r"(/user/)(?!search\b|signin\b|\[REDACTED\])[A-Za-z0-9_\-]{20,64}"), r"\1" + REDACTED),
    (re.compile(r"([?&]userId=)(?!\[REDACTED\])[^\s&\"',;)}\]]+"), r"\1" + REDACTED),
)

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    """`text` with every recognised credential replaced by [REDACTED]."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
        return redact(text) if redact(text) != text else value
    # Other objects are rendered by the formatter with str()/repr(): redact that rendering, and
    # only replace the object when something was found (keeps %d, %r of clean values intact).
    text = repr(value)
    redacted = redact(text)
    return value if redacted == text else redacted


class RedactSecretsFilter(logging.Filter):
    """Rewrites each record so no recognised credential reaches a handler. Never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_redact_value(value) for value in record.args)
        if not isinstance(record.msg, str):
            record.msg = _redact_value(record.msg)
        elif not record.args:
            record.msg = redact(record.msg)
        else:
            # A credential can straddle the format string and an argument ("token=%s", "abc"):
            # then the message is rendered and replaced by its redacted text. Otherwise the
            # shape is kept (redacting the format string alone could eat a "%s").
            try:
                rendered = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken record is the logging module's to report
                rendered = None
            if rendered is not None and redact(rendered) != rendered:
                record.msg, record.args = redact(rendered), ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD:
                record.__dict__[key] = _redact_value(value)
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            redacted = redact(text)
            if redacted != text:
                # The traceback carries a credential (an exception message with a URL): keep
                # only its redacted text; formatters print exc_text when exc_info is gone.
                record.exc_text = redacted
                record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_server_log_redaction() -> None:
    """Redact uvicorn's own log lines too, and write them as JSON when LOG_FORMAT=json.

    uvicorn gives its loggers ("uvicorn", which "uvicorn.error" propagates to, and
    "uvicorn.access") their own handlers before Django starts, and removes the access handler
    for --no-access-log; those lines never reach the console handler of settings.LOGGING.
    Naming those loggers in LOGGING would replace uvicorn's handlers and switch a disabled
    access log back on, so this adds the filter (and the JSON formatter) to whatever handlers
    uvicorn installed. Called from OpsConfig.ready().
    """
    from django.conf import settings

    as_json = getattr(settings, "LOG_FORMAT", "plain") == "json"
    for name in ("uvicorn", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
                handler.addFilter(RedactSecretsFilter())
            if as_json:
                handler.setFormatter(json_formatter())


# The INFO lines written on "uvicorn.error" for every WebSocket, by format string: uvicorn's
# `"WebSocket <path>" [accepted]` (its three WebSocket implementations), and the websockets
# library's "connection open" and "connection closed" (it logs on the logger uvicorn's
# websockets-sansio implementation hands it). Access-log lines in all but name.
WEBSOCKET_ACCEPTED = '%s - "WebSocket %s" [accepted]'
PER_CONNECTION_LINES = frozenset({WEBSOCKET_ACCEPTED, "connection open", "connection closed"})


class WebSocketAcceptedFilter(logging.Filter):
    """Drops the per-WebSocket INFO lines above, keeping every other record of the logger
    (start-up, shutdown, errors, refused upgrades). uvicorn writes them whatever
    `--no-access-log` says, two or three per connection: 2.6-4.8% of the event loop's samples in
    the bench's handshake ramp (record, token redaction, format, a write to stderr), and in a
    reconnect storm thousands of lines a second that say nothing the metrics do not."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in PER_CONNECTION_LINES


def _access_log_off() -> bool:
    """Whether uvicorn runs with `--no-access-log` (it then empties its access logger's handlers
    and stops it propagating). False when uvicorn configured no logging at all (the access lines,
    if any, then reach the root logger)."""
    access = logging.getLogger("uvicorn.access")
    return not access.handlers and not access.propagate


def install_websocket_accepted_filter() -> None:
    """With uvicorn's access log off, the per-WebSocket lines go too: they follow
    `--no-access-log` like the HTTP access lines (uvicorn itself never drops them). With the
    access log on, nothing changes. Called from OpsConfig.ready()."""
    error_log = logging.getLogger("uvicorn.error")
    if _access_log_off() and not any(isinstance(f, WebSocketAcceptedFilter) for f in error_log.filters):
        error_log.addFilter(WebSocketAcceptedFilter())


def json_formatter() -> logging.Formatter:
    """The JSON-lines formatter of LOG_FORMAT=json: timestamp (UTC, ISO 8601), level, logger,
    process, message, plus every `extra=` field (ids, codes)."""
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        # uvicorn adds a copy of each message with terminal colour codes.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )
