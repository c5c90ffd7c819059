"""Id handles stay out of the logs: the app sends them in paths and query strings."""

import logging

from chatproject.ops.logs import REDACTED, RedactSecretsFilter, redact

HANDLE = "Qk3_x-9aZbLmNoPqRsTuVwXy01"


def test_handles_in_paths_and_queries_are_redacted():
    assert redact(f"GET /user/{HANDLE} HTTP/1.1") == f"GET /user/{REDACTED} HTTP/1.1"
    assert redact(f"/user/search?q=bob&userId={HANDLE}") == f"/user/search?q=bob&userId={REDACTED}"
    assert redact(f"Not Found: /user/{HANDLE}/") == f"Not Found: /user/{REDACTED}/"
    # The routes' own names are not handles.
    assert redact("POST /user/signin") == "POST /user/signin"
    assert redact("GET /user/search?q=x") == "GET /user/search?q=x"


def test_an_access_log_record_keeps_its_shape():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4", "GET", f"/user/{HANDLE}", "1.1", 200),
        None,
    )
    RedactSecretsFilter().filter(record)
    assert HANDLE not in record.getMessage() and record.args[4] == 200
