"""Browser tests: Playwright for Python driving Debian's Chromium (/usr/bin/chromium, installed
by tests/browser/install_chromium.sh; Playwright's own browser download is not used).

They skip when Chromium or the playwright package is missing, except in CI
(CHAT_REQUIRE_SERVICES=1), where that is a failure. Screenshots go to tests/browser/artifacts/.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import override_settings

import tests.conftest as shared
from tests.conftest import REDIS_URL, REQUIRE_SERVICES, _start_servers

from .support import WAIT_MS, Person

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


def _unavailable() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (run tests/browser/install_chromium.sh as root)"
    return None


@pytest.fixture(scope="session")
def browser_available() -> None:
    """Skip (or in CI fail) when Chromium or Playwright is missing."""
    reason = _unavailable()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(f"browser tests are required in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium(browser_available):
    """One Chromium per test module; each test opens its own contexts (one per person).

    Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    while it is started, which would break the asyncio tests collected after this directory."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _serve(tmp: Path, **env: str):
    """Start a live server process as tests/conftest.py does, serving the web client's static
    files. Live servers run with DEBUG off, where WhiteNoise serves only what collectstatic put
    in STATIC_ROOT, read once at startup; so static files are collected into a fresh directory
    first. `env`: more settings for this server's environment.

    The server's PUBLIC_BASE_URL is its own address, as in production, so the links it makes
    (verification mails, uploaded files' URLs) point at it and the page loads media from its own
    origin. The port is chosen first and handed to the shared starter."""
    static_root = tmp / "static"
    with override_settings(STATIC_ROOT=static_root):
        call_command("collectstatic", "--noinput", "--link", verbosity=0)
    port = shared._free_port()
    env["STATIC_ROOT"] = str(static_root)
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with mock.patch.object(shared, "_free_port", return_value=port):
            (server,) = _start_servers(1, tmp, REDIS_URL)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return server


@pytest.fixture(scope="session")
def web_server(browser_available, django_db_setup, django_db_blocker, tmp_path_factory):
    """The live server the browser tests talk to."""
    server = _serve(tmp_path_factory.mktemp("browser"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def short_token_server(browser_available, django_db_setup, django_db_blocker, tmp_path_factory):
    """A live server whose access tokens live 2 seconds: the renewal path runs all the time."""
    server = _serve(tmp_path_factory.mktemp("browser-short"), JWT_ACCESS_SECONDS="2")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots; kept out of git (docs/screenshot.png is the one that is committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return ARTIFACTS


@pytest.fixture(scope="session")
def quick_timers_server(browser_available, django_db_setup, django_db_blocker, tmp_path_factory):
    """A live server with short typing and presence timers, so the tests can watch a typing
    indicator expire (ExpiresIn 2 s instead of 6 s) and presence change (0.5 s debounce
    instead of 1.5 s) without long waits."""
    server = _serve(
        tmp_path_factory.mktemp("browser-quick"),
        CHAT_TYPING_TTL_SECONDS="2",
        CHAT_PRESENCE_DEBOUNCE_SECONDS="0.5",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def media_server(browser_available, django_db_setup, django_db_blocker, tmp_path_factory):
    """A live server with small upload limits, so the tests meet each refusal quickly: files up
    to 1 MiB, and at most 2 uploads no message uses yet per person."""
    server = _serve(
        tmp_path_factory.mktemp("browser-media"),
        CHAT_UPLOAD_MAX_BYTES=str(1024 * 1024),
        CHAT_UPLOAD_MAX_UNUSED="2",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_sync_server(browser_available, django_db_setup, django_db_blocker, tmp_path_factory):
    """A live server whose sync answers carry at most 3 changes (CHAT_SYNC_MAX_CHANGES), so a
    few changes while offline make the client handle `Reload` and `More`."""
    server = _serve(tmp_path_factory.mktemp("browser-small-sync"), CHAT_SYNC_MAX_CHANGES="3")
    yield server
    server.stop()


@pytest.fixture
def people(chromium, web_server) -> Iterator:
    """Open a person's browser context: make(name, email, viewport=..., server=...). Console
    errors and page errors fail the test, except console errors containing `tolerate`."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    opened: list[Person] = []

    def make(name: str, email: str, *, viewport=None, server=None, tolerate: str = "") -> Person:
        context = chromium.new_context(
            base_url=(server or web_server).url,
            viewport=viewport or {"width": 1280, "height": 800},
            locale="en-GB",
        )
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        person = Person(name, email, context, page)
        page.on("pageerror", lambda error: person.problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                person.problems.append(f"console {message.type}: {message.text}")
                if message.type == "error" and not (tolerate and tolerate in message.text)
                else None
            ),
        )
        opened.append(person)
        return person

    yield make
    problems = {p.name: p.problems for p in opened if p.problems}
    for person in opened:
        person.context.close()
    assert not problems, problems
