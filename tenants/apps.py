from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """The server-side API for tenant backends (docs/tenants.md). No models of its own: apps and
    external identities live in accounts; this app only composes the other apps' services."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI description of AppKey auth)
