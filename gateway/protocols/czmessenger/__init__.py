"""The CZ Messenger wire protocol (Chozoi buyer/seller chat; spec seed 004), over the core.

Socket.IO 2 clients (transport "eio3") on Engine.IO path `/v1/conversations/sockets`, namespace
`/v1/conversations/events` (and the older `/socket.io` + `/messenger`), and its REST routes under
`/v1/conversations`. See docs/protocols/czmessenger.md.

- `protocol`: the `Protocol` object (credentials, refusal, welcome, prepare, render);
- `handlers`: inbound, one handler per client event;
- `directory`: what rendering needs of rooms (room ids, parties), read and cached per process;
- `render`, `wire`: outbound shapes, pure;
- `rest`, `urls`: the REST routes;
- `store`: the rooms' metadata, a Django app of this protocol (label `czmessenger`).

`PROTOCOL` is imported lazily: `store` is in INSTALLED_APPS, and Django imports this package
before the app registry is ready, when nothing that imports a model may be imported yet.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "PROTOCOL":
        from .protocol import PROTOCOL

        return PROTOCOL
    raise AttributeError(name)
