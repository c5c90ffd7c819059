"""What a tenant's backend names by its own keys. Today one table: named rooms (seed 003)."""

from django.db import models
from django.utils import timezone

from accounts.models import App
from messaging.models import Conversation


class AppRoom(models.Model):
    """A room of a tenant app: a group conversation that the app's backend and clients address
    by a name of their own (seed 003's `room`, e.g. "usr-1-2"), unique within the app, with the
    app's free-form `extra` object. The conversation holds everything else (members, history,
    receipts), so every protocol and the admin see the same room."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=100)
    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="app_room")
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="app_room_name_unique_per_app")]

    def __str__(self) -> str:
        return f"room {self.name} of app {self.app_id}"
