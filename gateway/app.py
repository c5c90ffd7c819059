"""The ASGI application: Socket.IO at /socket.io/, the Channels consumer at /ws/, Django for
everything else."""

import socketio
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from chatproject.core.body_limit import BodyLimit
from gateway.transports.socketio import build_server
from gateway.transports.ws import ChatConsumer

from .bridge import bridge
from .presence import tracker


async def _startup() -> None:
    await bridge.ensure_started()
    # The presence heartbeat runs from the start, connections or not: it keeps this process
    # registered and cleans up after processes that died.
    await tracker.start()


async def _shutdown() -> None:
    await tracker.stop()
    await bridge.stop()


def build_application(django_application):
    sio, _hub = build_server()
    channels_application = ProtocolTypeRouter(
        {
            "http": BodyLimit(django_application),
            "websocket": URLRouter([path("ws/", ChatConsumer.as_asgi())]),
        }
    )
    return socketio.ASGIApp(
        sio,
        other_asgi_app=channels_application,
        socketio_path="socket.io",
        on_startup=_startup,
        on_shutdown=_shutdown,
    )
