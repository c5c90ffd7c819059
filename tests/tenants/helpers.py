"""Signing tenant tokens the way a tenant backend does (PyJWT), and a tiny verification URL."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt


def sign(
    app, sub: str, *, key: str | None = None, exp_in: int = 3600, iat: int | None | bool = True, **claims
) -> str:
    """A tenant token for `sub` of `app`, signed with its first secret unless `key` is given."""
    now = int(time.time())
    payload = {"sub": sub, "app": app.public_id, "exp": now + exp_in, **claims}
    if iat is True:
        payload["iat"] = now
    elif iat is not False and iat is not None:
        payload["iat"] = iat
    return jwt.encode(payload, key or app.secret_1, algorithm="HS256")


class VerifyServer:
    """An app's verification URL, served from the test on 127.0.0.1: answers `status` (after
    `delay` seconds) and records the tokens it was asked about."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay, self.tokens = status, delay, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.tokens.append(parse_qs(urlsplit(self.path).query).get("token", [""])[0])
                time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/verify"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
