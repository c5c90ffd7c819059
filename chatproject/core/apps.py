from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "chatproject.core"
    label = "core"
