"""ASGI entry point: Django first (so apps are ready), then the realtime layer around it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
django_application = get_asgi_application()

from gateway.asgi import build_application  # noqa: E402

application = build_application(django_application)
