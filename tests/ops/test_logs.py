"""Logs: LOG_FORMAT=json writes one JSON object a line with the agreed fields, and no token
(query string, header, JWT, extra field, exception text) survives into any line."""

import io
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings

from chatproject.ops.logs import RedactSecretsFilter, json_formatter, redact

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1XzEyMyJ9.c2lnbmF0dXJlLXNlY3JldA"
OPAQUE = "opaque-refresh-7f3a9c"


@pytest.mark.parametrize(
    "text",
    [
        f"GET /socket.io/?EIO=4&token={OPAQUE}&transport=websocket",
        f"/api/x?accessToken={OPAQUE}",
        f"refreshToken={OPAQUE}&a=1",
        f'{{"refresh_token": "{OPAQUE}"}}',
        f"{{'access_token': '{OPAQUE}'}}",
        f"Authorization: Bearer {OPAQUE}",
        f"[(b'authorization', b'Bearer {OPAQUE}')]",
        f"authorization={OPAQUE}",
        f"password={OPAQUE}",
        f"header carried {JWT} somewhere",
        "a JWT header alone: eyJhbGciOiJIUzI1NiJ9",
    ],
)
def test_redact_removes_credentials(text):
    out = redact(text)
    assert OPAQUE not in out
    assert "eyJ" not in out
    assert "[REDACTED]" in out


def test_redact_leaves_ordinary_text_alone():
    text = "user u_123 sent message m_9 to c_4 (tokens=3, code=not_found)"
    assert redact(text) == text


def _run_python(script: str, *args: str, env: dict[str, str]) -> str:
    """Run `script` in a new interpreter (logging as a server process sets it up); its output."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout + result.stderr


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.ops.jsonlogs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def test_json_lines_parse_carry_fields_and_no_token():
    stream = io.StringIO()
    logger = _logger(stream)
    logger.info("connect refused: user=%s code=%s", "u_1", "unauthorized", extra={"conn_id": "k9"})
    logger.warning("request %s", f"/socket.io/?EIO=4&token={JWT}")
    logger.info("headers %r", {"Authorization": f"Bearer {OPAQUE}"})
    logger.info("login", extra={"path": f"/api/auth/refresh?refreshToken={OPAQUE}", "code": "ok"})
    logger.info(f"preformatted accessToken={OPAQUE}")
    try:
        raise ValueError(f"bad url https://h/x?token={OPAQUE}")
    except ValueError:
        logger.exception("handler failed: event=%s", "send")
    output = stream.getvalue()
    assert OPAQUE not in output and JWT not in output and "eyJ" not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 6
    for line in lines:
        assert {"timestamp", "level", "logger", "process", "message"} <= set(line)
        assert line["logger"] == "tests.ops.jsonlogs"
        assert line["process"] == os.getpid()
    assert lines[0]["message"] == "connect refused: user=u_1 code=unauthorized"
    assert lines[0]["conn_id"] == "k9" and lines[0]["level"] == "INFO"
    assert lines[0]["timestamp"].endswith("+00:00")
    assert lines[3]["code"] == "ok" and "[REDACTED]" in lines[3]["path"]
    assert "ValueError" in lines[5]["exc_info"] and "[REDACTED]" in lines[5]["exc_info"]


def test_console_handler_redacts_in_every_format():
    handler = settings.LOGGING["handlers"]["console"]
    assert handler["filters"] == ["redact_secrets"]
    assert settings.LOGGING["filters"]["redact_secrets"]["()"] == "chatproject.ops.logs.RedactSecretsFilter"


SCRIPT = textwrap.dedent(
    """
    import logging, logging.config
    import uvicorn.config
    # As uvicorn does before it imports the application: its own handlers, access log on.
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    import django
    django.setup()
    logging.getLogger("chat.test").warning("token=%s user=%s", "{jwt}", "u_1")
    logging.getLogger("uvicorn.error").info("startup {jwt}")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/socket.io/?EIO=4&accessToken={opaque}", "1.1", 200
    )
    """
)


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_configured_server_logs_are_json_and_redacted(log_format):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
        "DEBUG": "1",
        "LOG_FORMAT": log_format,
        "LOG_LEVEL": "INFO",
    }
    output = _run_python(SCRIPT.format(jwt=JWT, opaque=OPAQUE), env=env)
    assert OPAQUE not in output and "eyJ" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 3, output
    if log_format == "json":
        # uvicorn writes its access log to stdout, the rest to stderr.
        records = {record["logger"]: record for record in map(json.loads, lines)}
        assert set(records) == {"chat.test", "uvicorn.error", "uvicorn.access"}
        assert records["chat.test"]["message"] == "token=[REDACTED] user=u_1"
        assert records["uvicorn.access"]["message"] == (
            '127.0.0.1:5000 - "GET /socket.io/?EIO=4&accessToken=[REDACTED] HTTP/1.1" 200'
        )
        assert "color_message" not in records["uvicorn.error"]
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(lines[0])


ACCEPTED_SCRIPT = textwrap.dedent(
    """
    import logging, logging.config, sys
    import uvicorn.config
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    if sys.argv[1] == "off":  # what uvicorn's Config does for --no-access-log
        logging.getLogger("uvicorn.access").handlers = []
        logging.getLogger("uvicorn.access").propagate = False
    import django
    django.setup()
    error_log = logging.getLogger("uvicorn.error")
    error_log.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/socket.io/?EIO=4&transport=websocket")
    error_log.info("connection open")  # the websockets library's, on the logger uvicorn gives it
    error_log.info("connection closed")
    error_log.info("connection rejected (%d %s)", 503, "Service Unavailable")
    error_log.info("Application startup complete.")
    error_log.warning("something uvicorn warns about")
    """
)


@pytest.mark.parametrize("access_log", ["on", "off"])
def test_the_websocket_accepted_line_follows_uvicorns_access_log(access_log):
    """uvicorn logs `"WebSocket ..." [accepted]` for every WebSocket on its error logger, and
    the websockets library "connection open" and "connection closed", even with
    --no-access-log: with the access log off the product drops those lines, and only them."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatproject.settings", "DEBUG": "1", "LOG_LEVEL": "INFO"}
    output = _run_python(ACCEPTED_SCRIPT, access_log, env=env)
    assert "Application startup complete." in output
    assert "something uvicorn warns about" in output
    assert "connection rejected (503 Service Unavailable)" in output
    for line in ("[accepted]", "connection open", "connection closed"):
        assert (line in output) is (access_log == "on"), line
