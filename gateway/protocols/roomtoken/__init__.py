"""Seed 002's customer/artisans room-token chat, over the core (docs/protocols/roomtoken.md).

Socket.IO 2 clients (transport "eio3") on `/socket.io`, namespaces `/customer` and `/artisans`,
and the REST history `GET /v1/chat`.

- `protocol`: the `Protocol` object (credentials, refusal, welcome, prepare, render, scopes);
- `handlers`: inbound, one handler per client event;
- `directory`: what rendering needs of rooms, read and cached per process;
- `selves`: what each local connection calls itself (its id handle), per user, per process;
- `render`, `wire`: outbound shapes, pure;
- `rest`, `urls`: the REST history;
- `store`: the rooms, a Django app of this protocol (label `roomtoken`).

`PROTOCOL` is imported lazily: `store` is in INSTALLED_APPS, and Django imports this package
before the app registry is ready.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "PROTOCOL":
        from .protocol import PROTOCOL

        return PROTOCOL
    raise AttributeError(name)
