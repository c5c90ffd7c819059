"""Shared fixtures: verified users with tokens, and live server processes.

Live servers are real uvicorn processes running chatproject.asgi on the test database, started
once per session (per configuration) and stopped before the test database is dropped. Tests
that talk to them use `transactional_db` so what they write is committed and visible.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "")
REQUIRE_SERVICES = os.environ.get("CHAT_REQUIRE_SERVICES") == "1"
# Async tests set up data with the ORM directly, one statement at a time in the test's own
# thread; nothing else runs there, so Django's guard against sharing a connection across
# concurrent tasks is lifted for the test process only (never for the servers it starts).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


NODE = shutil.which("node")


def require_node_package(package: str, version: str) -> None:
    """Skip a test that drives an npm client when node or the package is missing (fail in CI,
    where `make test` installs them), and check the version the test is written for."""
    manifest = ROOT / "node_modules" / package / "package.json"
    if NODE is None or not manifest.exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"node and node_modules/{package} (make node-deps) are required in CI")
        pytest.skip(f"node or node_modules/{package} missing (make node-deps)")
    assert json.loads(manifest.read_text())["version"] == version


@dataclass
class ChatUser:
    user: object
    access: str
    refresh: str
    sid: str

    @property
    def id(self) -> str:
        return self.user.public_id


@pytest.fixture
def make_user(db):
    """A verified user with a self chat and a fresh token pair."""
    from accounts.models import User
    from accounts.tokens import tokens_issue
    from messaging.services import self_conversation_ensure

    counter = {"n": 0}

    def make(
        name: str | None = None, email: str | None = None, password: str = "correct horse 42"
    ) -> ChatUser:
        counter["n"] += 1
        name = name or f"User{counter['n']}"
        email = email or f"{name.lower()}{counter['n']}@example.com"
        user = User.objects.create_user(
            email=email, password=password, display_name=name, email_verified=True
        )
        self_conversation_ensure(user=user)
        pair = tokens_issue(user=user)
        return ChatUser(user, pair.access, pair.refresh, pair.sid)

    return make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


class ServerProcess:
    def __init__(self, port: int, env: dict[str, str], log: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env  # a restart on the same port (tests/ops/test_drain.py) reuses it
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "chatproject.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--ws",
                "gateway.transports.uvicorn_ws:WebSocketProtocol",  # as `make run`
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def require_redis() -> None:
    """Multi-process tests need Redis: CI (CHAT_REQUIRE_SERVICES=1) fails without it, a laptop
    skips."""
    if not REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("REDIS_URL is required for multi-process tests in CI")
        pytest.skip("REDIS_URL not set: multi-process tests need Redis")


def _start_servers(
    count: int, tmp: Path, redis_url: str, extra_env: dict[str, str] | None = None
) -> list[ServerProcess]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatproject.settings",
            "DATABASE_URL": _database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "0",
            "SECURE_COOKIES": "0",
            "PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp / "mail"),
            "MEDIA_ROOT": str(tmp / "media"),
            "DATABASE_CONN_MAX_AGE": "0",
            "CHANNEL_PREFIX": f"chattest{os.getpid()}",
            "THROTTLE_LOGIN": "1000/min",
            "CHAT_LOGIN_FAILURES_FREE": "1000",
            "THROTTLE_SIGNUP": "1000/min",
            "THROTTLE_VERIFY": "1000/min",
            "THROTTLE_RESEND": "1000/min",
            "LOG_LEVEL": "WARNING",
            # Short pings: polling clients that close are released promptly.
            "CHAT_SOCKET_PING_INTERVAL": "2",
            "CHAT_SOCKET_PING_TIMEOUT": "3",
        }
    )
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra_env or {})
    servers = [ServerProcess(_free_port(), env, tmp / f"server{i}.log") for i in range(count)]
    for server in servers:
        server.wait_ready()
    return servers


@pytest.fixture(scope="session")
def live_server_proc(django_db_setup, django_db_blocker, tmp_path_factory):
    """One server process on the configured bus (Redis if REDIS_URL is set, else in memory)."""
    servers = _start_servers(1, tmp_path_factory.mktemp("live"), REDIS_URL)
    yield servers[0]
    for server in servers:
        server.stop()


# The pair exports its metrics, one endpoint per process (tests/ops/test_metrics_pair.py), and
# samples the bus's subscribers every second instead of every 15.
PAIR_METRICS_TOKEN = "pair-metrics-token-0123456789"
PAIR_ENV = {"CHAT_METRICS": "1", "CHAT_METRICS_TOKEN": PAIR_METRICS_TOKEN, "CHAT_BUS_SAMPLE_SECONDS": "1"}


@pytest.fixture(scope="session")
def redis_server_pair(django_db_setup, django_db_blocker, tmp_path_factory):
    """Two server processes sharing Redis (the bus) and the database."""
    require_redis()
    servers = _start_servers(2, tmp_path_factory.mktemp("pair"), REDIS_URL, PAIR_ENV)
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def _media_in_tmp(tmp_path_factory):
    """Uploads of the test process go to a temporary folder, never to var/media."""
    from django.test import override_settings

    with override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media"))):
        yield


@pytest.fixture(scope="session", autouse=True)
def _release_test_database(django_db_setup, django_db_blocker):
    """Async tests touch the ORM inside each test's own event-loop context, and Django keeps one
    connection per context; those connections outlive their tests. Close them all before the
    test database is dropped, or PostgreSQL refuses to drop a database in use."""
    yield
    from django.db import connection, connections

    connections.close_all()
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()


@pytest.fixture(scope="session", autouse=True)
def _flush_retries_deadlocks():
    """Transactional tests end with a flush (TRUNCATE of every table). A live server process may
    still be finishing work its clients started (an offline notice after a disconnect reads
    memberships), and PostgreSQL may then pick the TRUNCATE as a deadlock's victim. The flush
    holds nothing when it is aborted, so it is tried again, a few times, after a short pause."""
    from django.core.management import CommandError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown(self):
        for attempt in range(5):
            try:
                return original(self)
            except CommandError as error:  # flush wraps the database's error
                if "deadlock detected" not in str(error.__cause__) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original


class CommitAPIClient(APIClient):
    """Tests run inside a transaction, so on-commit callbacks (realtime publishes) never fire by
    themselves; this client runs them when each request ends, as autocommit does in production."""

    capture = None

    def request(self, **request):
        with self.capture(execute=True):
            return super().request(**request)


@pytest.fixture
def client_for(db, django_capture_on_commit_callbacks):
    """An API client authenticated as the given user with the Bearer token of a real login."""

    def make(chat_user=None) -> CommitAPIClient:
        client = CommitAPIClient()
        client.capture = django_capture_on_commit_callbacks
        if chat_user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {chat_user.access}")
        return client

    return make


@pytest.fixture
def bus_sent(monkeypatch) -> list:
    """Every (groups, event) handed to the bus on commit; each must survive JSON (the in-memory
    layer would hide what Redis refuses to serialise)."""
    sent: list = []

    def record(groups, event) -> None:
        assert json.loads(json.dumps(event)) == event
        sent.append((groups, event))

    monkeypatch.setattr("chatproject.bus.transport.send", record)
    return sent


@pytest.fixture
def alice(make_user):
    return make_user("Alice")


@pytest.fixture
def bob(make_user):
    return make_user("Bob")


@pytest.fixture
def carol(make_user):
    return make_user("Carol")


@pytest.fixture
def dave(make_user):
    return make_user("Dave")
