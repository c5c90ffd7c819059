"""Socket.IO 2 transport: Engine.IO protocol 3 and Socket.IO protocol 4, as an ASGI app."""

from .namespace import Eio3Namespace
from .ports import HubPort
from .server import Eio3Server

__all__ = ["Eio3Namespace", "Eio3Server", "HubPort"]
