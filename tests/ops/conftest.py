"""Live servers with a broken or interruptible environment, for readiness and metrics.

They reuse the root conftest's `_start_servers` unchanged: extra variables are set in the
environment it copies, and the database URL it computes is swapped for the duration of the
start (it is looked up when called).
"""

import socket
import threading
from contextlib import suppress
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests import conftest as root

METRICS_TOKEN = "metrics-test-token-0123456789"


def start_server(tmp, *, redis_url: str = "", env: dict[str, str] | None = None, database_url: str = ""):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        if database_url:
            mp.setattr(root, "_database_url", lambda: database_url)
        return root._start_servers(1, tmp, redis_url)[0]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    return root._free_port()


class TcpProxy:
    """A TCP forwarder to a real service that a test can cut (listener and every open
    connection closed: clients see the service gone) and restore on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = root._free_port()
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.1)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def cut(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture(scope="session")
def dbdown_server(django_db_setup, tmp_path_factory):
    """A server whose DATABASE_URL points at a closed port (it starts: nothing connects at start)."""
    server = start_server(
        tmp_path_factory.mktemp("dbdown"),
        database_url=f"postgres://postgres@127.0.0.1:{closed_port()}/nothing",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxied_server(django_db_setup, tmp_path_factory):
    """A server reaching Redis (and PostgreSQL, when the tests run on it) through proxies the
    test can cut. A server cannot start with Redis down (its bus subscribes at start), so
    "Redis down" is a Redis that goes away after the start."""
    if not root.REDIS_URL:
        if root.REQUIRE_SERVICES:
            pytest.fail("REDIS_URL is required for the readiness test in CI")
        pytest.skip("REDIS_URL not set: the bus readiness test needs Redis")
    redis_parts = urlsplit(root.REDIS_URL)
    bus = TcpProxy(redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379)
    bus.start()
    database_url = root._database_url()
    database = None
    if database_url.startswith("postgres"):
        db_parts = urlsplit(database_url)
        database = TcpProxy(db_parts.hostname or "127.0.0.1", db_parts.port or 5432)
        database.start()
        database_url = _through(database_url, database)
    server = start_server(
        tmp_path_factory.mktemp("proxied"),
        redis_url=_through(root.REDIS_URL, bus),
        database_url=database_url if database else "",
    )
    server.proxies = {"bus": bus, "database": database}
    yield server
    server.stop()
    for proxy in (bus, database):
        if proxy is not None:
            proxy.cut()


@pytest.fixture(scope="session")
def metrics_server(django_db_setup, tmp_path_factory):
    """A server with /metrics on (bearer token) in multi-process mode."""
    tmp = tmp_path_factory.mktemp("metrics")
    prom_dir = tmp / "prometheus"
    prom_dir.mkdir()
    server = start_server(
        tmp,
        redis_url=root.REDIS_URL,
        env={
            "CHAT_METRICS": "1",
            "CHAT_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
        },
    )
    server.prom_dir = prom_dir
    yield server
    server.stop()


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local test server
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)
