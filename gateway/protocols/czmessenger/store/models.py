"""A CZ Messenger room: the metadata of one direct conversation between a buyer and a seller."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from messaging.models import Conversation


class Side(models.TextChoices):
    BUYER = "BUYER", "Buyer"
    SELLER = "SELLER", "Seller"


class Room(models.Model):
    """`room_id` is the wire id `<buyer id>.<seller id>` (the identities' ids in their realm,
    which never contain a dot). The conversation holds the messages and read pointers; this
    row holds only what the CZ Messenger clients show on top of it. Per-side fields come in
    pairs (buyer_*, seller_*) because each side pins and deletes on its own."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="+")
    room_id = models.CharField(max_length=130, unique=True)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=16, default="BS")
    shop_id = models.CharField(max_length=64, blank=True)
    creator = models.CharField(max_length=64, blank=True)
    buyer_info = models.JSONField(default=dict, blank=True)
    pinned_by_buyer = models.DateTimeField(null=True, blank=True)
    pinned_by_seller = models.DateTimeField(null=True, blank=True)
    deleted_by_buyer = models.BooleanField(default=False)
    deleted_by_seller = models.BooleanField(default=False)
    # History before a side's deletion stays hidden from that side, even after re-enabling.
    buyer_deleted_at = models.DateTimeField(null=True, blank=True)
    seller_deleted_at = models.DateTimeField(null=True, blank=True)
    blocked_by = models.CharField(max_length=8, choices=Side.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(buyer=models.F("seller")), name="czm_room_two_parties"),
        ]

    def __str__(self) -> str:
        return self.room_id

    def side_of(self, user_pk: int) -> str | None:
        """BUYER or SELLER for a party of the room, None for anyone else."""
        if user_pk == self.buyer_id:
            return Side.BUYER
        if user_pk == self.seller_id:
            return Side.SELLER
        return None


class ImageLink(models.Model):
    """A message sent as `type: IMAGE` with a URL as its content: the core stores it as a text
    message (its images are uploads), this row keeps the wire type so it comes back as IMAGE.

    Keyed by what a send carries before it is stored (conversation, sender, client message id)
    and written before the send, so the other party's live copy, rendered in another process
    as soon as the message commits, already finds it. The handler gives an IMAGE send without a
    client message id one of its own."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    client_message_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "sender", "client_message_id"], name="czm_image_link_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"image {self.client_message_id} in {self.conversation_id}"
