"""A small ASGI app for the live Socket.IO 2 transport tests: Eio3Server with fake in-process hubs.

Run by tests/gateway/transports/test_eio3_live.py under uvicorn:

    EIO3_PING_INTERVAL=1 python -m uvicorn tests.gateway.transports.eio3_app:app

Namespaces `/`, `/customer` and `/v1/conversations/events` on the Engine.IO path
`/v1/conversations/sockets`. The fake hub:
- refuses a socket whose query lacks `token` with "Authentication Error" (`/` accepts everyone);
- greets with `welcome` {conn_id, nsp, token, user_id, transport} and joins room `everyone`;
- `echo` acks with all its arguments; `shout` fans out its first argument as `shouted` to room
  `everyone` except the sender and acks ["ok"]; `slow` sleeps its first argument (ms) then acks
  it back (ordering); `flood` queues its first argument (a count) of `flood` events at once;
  `bye` closes the socket from the server side.
`GET /_state` returns what the hubs saw (connects, greets, forgets by conn_id) as JSON, and the
number of live sessions; any other request the Eio3Server does not want gets an empty 404.
"""

import asyncio
import json
import os

from gateway.transports.eio3 import Eio3Namespace, Eio3Server
from gateway.transports.handshake import Admission, Handshake

EVENTS = {"connects": [], "refused": [], "greets": [], "forgets": [], "handled": []}


class FakeHub:
    def __init__(self, name: str, *, require_token: bool):
        self.name = name
        self.require_token = require_token
        self.transport: Eio3Namespace | None = None
        self.handshakes: dict[str, Handshake] = {}

    async def connect(self, conn_id: str, handshake: Handshake) -> Admission:
        if self.require_token and "token" not in handshake.query:
            EVENTS["refused"].append(conn_id)
            return Admission(False, "Authentication Error")
        self.handshakes[conn_id] = handshake
        EVENTS["connects"].append(conn_id)
        return Admission(True)

    def lane(self, conn_id, event):
        return None  # no event runs ahead of the connection's earlier ones (gateway/lanes.py)

    async def greet(self, conn_id: str) -> None:
        EVENTS["greets"].append(conn_id)
        handshake = self.handshakes[conn_id]
        await self.transport.join_local(conn_id, ["everyone"])
        await self.transport.send(
            conn_id,
            "welcome",
            {
                "conn_id": conn_id,
                "nsp": self.name,
                "token": handshake.query.get("token"),
                "user_id": handshake.query.get("user_id"),
                "transport": handshake.transport,
                "auth": handshake.auth,
            },
        )

    async def handle(self, conn_id: str, event: str, args: list, *, oversize: bool = False) -> list | None:
        EVENTS["handled"].append([conn_id, event])
        if event == "echo":
            return args
        if event == "shout":
            await self.transport.fanout("everyone", "shouted", args[0], only=None, skip={conn_id})
            return ["ok"]
        if event == "slow":
            await asyncio.sleep(args[0] / 1000)
            return [args[0]]
        if event == "flood":  # args[0] events queued at once: over max_pending drops the session
            for n in range(args[0]):
                await self.transport.send(conn_id, "flood", n)
            return None
        if event == "bye":
            await self.transport.close(conn_id)
            return None
        return None

    async def forget(self, conn_id: str) -> None:
        EVENTS["forgets"].append(conn_id)
        self.handshakes.pop(conn_id, None)


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


server = Eio3Server(
    path="/v1/conversations/sockets",
    ping_interval=_float("EIO3_PING_INTERVAL", 25),
    ping_timeout=_float("EIO3_PING_TIMEOUT", 20),
    max_payload=int(os.environ.get("EIO3_MAX_PAYLOAD", 64 * 1024)),
    max_http_body=int(os.environ.get("EIO3_MAX_HTTP_BODY", 128 * 1024)),
    max_pending=int(os.environ.get("EIO3_MAX_PENDING", 1000)),
    cors_allowed_origins=["https://app.example.com"],
)
for name in ("/", "/customer", "/v1/conversations/events"):
    hub = FakeHub(name, require_token=name != "/")
    hub.transport = server.mount(name, hub)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await server(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == "/_state":
        body = json.dumps({**EVENTS, "sessions": len(server.sessions)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif server.wants(scope):
        await server(scope, receive, send)
    elif scope["type"] == "http":
        # An empty 404: python-engineio's client closes its HTTP session on a non-2xx answer
        # *before* reading the body, so a body still on the wire made its connect raise
        # aiohttp's RuntimeError instead of ConnectionError (a CI flake on a loaded machine).
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
    else:
        await receive()
        await send({"type": "websocket.close", "code": 1008})
