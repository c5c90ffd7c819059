from django.apps import AppConfig


class RoomTokenStoreConfig(AppConfig):
    name = "gateway.protocols.roomtoken.store"
    label = "roomtoken"
    verbose_name = "Room-token rooms (seed 002)"
    default_auto_field = "django.db.models.BigAutoField"
