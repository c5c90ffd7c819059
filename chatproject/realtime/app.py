"""The ASGI application: Socket.IO at /socket.io/, the Channels consumer at /ws/, Django for
everything else."""

import socketio
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from .bridge import bridge
from .consumers import ChatConsumer
from .server import build_server


def build_application(django_application):
    sio, _hub = build_server()
    channels_application = ProtocolTypeRouter(
        {
            "http": django_application,
            "websocket": URLRouter([path("ws/", ChatConsumer.as_asgi())]),
        }
    )
    return socketio.ASGIApp(
        sio,
        other_asgi_app=channels_application,
        socketio_path="socket.io",
        on_startup=bridge.ensure_started,
        on_shutdown=bridge.stop,
    )
