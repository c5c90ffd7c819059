"""Helpers for the browser tests: the mails the server wrote, and the test password."""

import email
import re
import threading
import time
from collections.abc import Callable
from email import policy
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PASSWORD = "correct horse 42"
MAIL_WAIT_SECONDS = 10


def verification_mail(mail_dir: Path, address: str) -> tuple[str, str]:
    """The code and link of the newest verification mail to `address` written by the server's
    file mail backend (one file per connection, messages separated by a line of dashes)."""
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    while time.monotonic() < deadline:
        found = []
        for path in mail_dir.glob("*.log") if mail_dir.exists() else ():
            for chunk in path.read_text(encoding="utf-8").split("-" * 79):
                message = email.message_from_string(chunk.strip(), policy=policy.default)
                if message["To"] == address:
                    found.append((path.stat().st_mtime_ns, message))
        if found:
            message = max(found, key=lambda item: item[0])[1]
            text = message.get_body(preferencelist=("plain",)).get_content()
            code = re.search(r"code is: (\d{6})", text).group(1)
            link = re.search(r"(https?://\S+/verify\?\S+)", text).group(1)
            return code, link
        time.sleep(0.1)
    raise AssertionError(f"no verification mail to {address} in {mail_dir}")


def on_server(link: str, server_url: str) -> str:
    """The mailed link points at PUBLIC_BASE_URL; the test server listens elsewhere."""
    parts, base = urlsplit(link), urlsplit(server_url)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))


def off_the_browser_thread(fn: Callable[[], object]) -> object:
    """Run ORM code that publishes events in a thread of its own: Playwright's sync API keeps
    an event loop in the test's thread, where asgiref refuses to bridge to the channel layer."""
    from django.db import connection

    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")
