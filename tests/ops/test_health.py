"""/healthz and /readyz: in process (fast, every branch) and against live servers (the real
ASGI stack, a database and a Redis that go away and come back)."""

import asyncio
import json
import time

import pytest
from django.test import Client, override_settings

from chatproject.ops import health

from .conftest import http_get


@pytest.fixture(autouse=True)
def _fresh_health_state(monkeypatch):
    monkeypatch.setattr(health, "_draining", False)
    monkeypatch.setattr(health, "_last_failing", frozenset())


def test_healthz_answers_without_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"alive": True}
    assert response["Cache-Control"] == "no-store"


def test_probes_ignore_host_check_and_https_redirect(db):
    client = Client(HTTP_HOST="10.9.9.9")
    with override_settings(SECURE_SSL_REDIRECT=True):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        # The same request to any other route is refused: the exemption is what the test shows.
        assert client.get("/api/me/").status_code in (301, 400)


def test_readyz_ok_when_database_answers(db):
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "failing": []}


@override_settings(REDIS_URL="redis://:hunter2@127.0.0.1:1/0")
def test_readyz_names_bus_when_redis_unreachable_and_leaks_nothing(db):
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "failing": ["bus"]}
    body = response.content.decode()
    assert "127.0.0.1" not in body and "hunter2" not in body and "Error" not in body


def test_readyz_database_check_is_bounded_by_timeout(db, monkeypatch, settings):
    settings.CHAT = {**settings.CHAT, "READY_TIMEOUT_SECONDS": 0.2}
    monkeypatch.setattr(health, "_database_probe", lambda seconds: time.sleep(1.5))
    started = time.monotonic()
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "failing": ["database"]}
    assert time.monotonic() - started < 1.0


def test_readyz_database_failure_is_logged_once_per_change(db, monkeypatch, caplog):
    def broken(seconds):
        raise OSError("could not connect to db.internal.example:5432")

    monkeypatch.setattr(health, "_database_probe", broken)
    for _ in range(3):
        assert asyncio.run(health.failing_parts()) == ["database"]
    failing_lines = [r for r in caplog.records if "database failing" in r.getMessage()]
    assert len(failing_lines) == 1
    monkeypatch.undo()
    monkeypatch.setattr(health, "_last_failing", frozenset({"database"}))
    assert asyncio.run(health.failing_parts()) == []
    assert any("database recovered" in r.getMessage() for r in caplog.records)


def test_readyz_fails_while_draining(db):
    health.mark_draining()
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["draining"]


# --- Live servers -----------------------------------------------------------------------------


def test_live_healthz_and_readyz(live_server_proc):
    status, body, headers = http_get(f"{live_server_proc.url}/healthz", {"Host": "203.0.113.7"})
    assert status == 200 and json.loads(body) == {"alive": True}
    status, body, _ = http_get(f"{live_server_proc.url}/readyz", {"Host": "203.0.113.7"})
    assert status == 200 and json.loads(body) == {"ready": True, "failing": []}


def test_live_readyz_names_database_when_unreachable(dbdown_server):
    status, body, _ = http_get(f"{dbdown_server.url}/healthz")
    assert status == 200
    status, body, _ = http_get(f"{dbdown_server.url}/readyz")
    assert status == 503
    assert json.loads(body) == {"ready": False, "failing": ["database"]}
    assert b"postgres" not in body and b"nothing" not in body


def _wait_ready(url: str, expect_status: int, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = http_get(f"{url}/readyz")
        if status == expect_status or time.monotonic() > deadline:
            assert status == expect_status, body
            return json.loads(body)
        time.sleep(0.2)


def test_live_readyz_bus_and_database_down_and_back(proxied_server):
    url, proxies = proxied_server.url, proxied_server.proxies
    assert _wait_ready(url, 200) == {"ready": True, "failing": []}

    proxies["bus"].cut()
    assert _wait_ready(url, 503) == {"ready": False, "failing": ["bus"]}

    if proxies["database"] is not None:
        proxies["database"].cut()
        assert _wait_ready(url, 503) == {"ready": False, "failing": ["database", "bus"]}
        proxies["database"].start()

    proxies["bus"].start()
    assert _wait_ready(url, 200) == {"ready": True, "failing": []}
    status, _, _ = http_get(f"{url}/healthz")
    assert status == 200
