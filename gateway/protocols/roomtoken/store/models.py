"""A seed 002 room: a room token in a namespace of a tenant app, and its conversation."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import App
from chatproject.core.ids import new_public_id
from messaging.models import Conversation

TOKEN_MAX = 191  # characters of a room token or a room id (indexable in every database)


class Namespace(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    ARTISANS = "artisans", "Artisans"


class Room(models.Model):
    """`token` is unique per app and namespace (the same token in the two namespaces is two
    rooms, spec §8.12); `public_id` is the wire's `_id`; `room_id` the client's own `roomID`.
    The parties never change; who may read and write is the conversation's membership."""

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    namespace = models.CharField(max_length=8, choices=Namespace.choices)
    token = models.CharField(max_length=TOKEN_MAX)
    room_id = models.CharField(max_length=TOKEN_MAX, blank=True)
    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    vendor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app", "namespace", "token"], name="roomtoken_room_token"),
            models.CheckConstraint(condition=~Q(customer=F("vendor")), name="roomtoken_room_two_parties"),
        ]
        # The rooms of a user in a namespace (list-room, presence): by either party.
        indexes = [
            models.Index(fields=["customer", "namespace"], name="roomtoken_room_customer"),
            models.Index(fields=["vendor", "namespace"], name="roomtoken_room_vendor"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace} room {self.public_id}"
