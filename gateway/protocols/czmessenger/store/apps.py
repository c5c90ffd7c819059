from django.apps import AppConfig


class CzMessengerStoreConfig(AppConfig):
    name = "gateway.protocols.czmessenger.store"
    label = "czmessenger"
    verbose_name = "CZ Messenger rooms"
    default_auto_field = "django.db.models.BigAutoField"
