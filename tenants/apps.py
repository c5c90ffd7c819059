from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """The server-side API for tenant backends (docs/tenants.md). Apps and external identities
    live in accounts; this app composes the other apps' services and keeps one table of its own,
    the apps' named rooms (tenants.models.AppRoom, seed 003)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI description of AppKey auth)
