"""Helpers for the browser tests: a person in their own browser context, logging in, the mails
the server wrote, and the test password."""

import email
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PASSWORD = "correct horse 42"
MAIL_WAIT_SECONDS = 10
WAIT_MS = 10_000


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@dataclass
class Person:
    """One person in their own browser context."""

    name: str
    email: str
    context: object
    page: object
    problems: list[str] = field(default_factory=list)

    def chat_item(self, title: str):
        return self.page.locator("#chat-list .chat-item", has=self.page.locator(".name", has_text=title))

    def badge(self, title: str):
        return self.chat_item(title).locator(".badge")

    def message(self, text: str):
        return self.page.locator("#message-list .msg .text", has_text=text)

    def my_message(self, text: str):
        return self.page.locator("#message-list .msg.mine", has=self.page.locator(".text", has_text=text))

    def open_chat(self, title: str) -> None:
        self.chat_item(title).click()
        expect(self.page.locator("#conv-title")).to_have_text(title)

    def send(self, text: str) -> None:
        self.page.fill("#composer-input", text)
        self.page.keyboard.press("Enter")
        expect(self.my_message(text)).to_have_attribute("data-state", "sent")

    def shot(self, artifacts: Path, name: str) -> None:
        self.page.screenshot(path=str(artifacts / name))


def log_in(person: Person) -> None:
    page = person.page
    page.goto("/auth")
    page.locator("#login-email").fill(person.email)
    page.locator("#login-password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    wait_for_chat(person)


def wait_for_chat(person: Person) -> None:
    page = person.page
    page.wait_for_url(lambda url: url.endswith("/"))
    expect(page.locator("#loading")).to_be_hidden()
    expect(page.locator("#me-name")).to_have_text(person.name)
    expect(person.chat_item("Notes to self")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-connection", "online")


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
