from django.conf import settings
from django.db import models
from django.utils import timezone

from messaging.models import Conversation


class Group(models.Model):
    """What a group conversation has beyond a conversation: a description, an avatar, a creator.

    The name lives on the conversation (`Conversation.title`) so conversation lists never need
    this app. Members and their roles are messaging Memberships (owner, admin, member).
    """

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="group")
    description = models.TextField(blank=True)
    avatar_url = models.URLField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.conversation.title or self.conversation.public_id
