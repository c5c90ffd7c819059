"""Admin for conversations and messages: a place to look, not a second write path.

Nothing is added here: a conversation needs its members and its key, a message its sequence
number, and only the services allocate those. Every field is read-only: kind, keys, sequence
numbers and a message's conversation and sender carry invariants, and an edit of a message's
text or of its deleted_at would bypass the services, so no client would hear of it. Nothing is
deleted here either: a hard-deleted message leaves a hole in the sequence that clients take for a
lost message. Moderation actions, going through services, come with a later issue.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Conversation, Membership, Message


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role", "last_read_seq", "joined_at", "left_at", "left_seq")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).select_related("user").order_by("joined_at", "pk")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("public_id", "kind", "last_seq", "last_message_at", "created_at")
    list_filter = ("kind",)
    search_fields = ("=public_id",)
    ordering = ("-last_message_at",)
    fields = ("public_id", "kind", "unique_key", "last_seq", "last_message_at", "created_at", "created_by")
    readonly_fields = fields
    inlines = (MembershipInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("public_id", "sender", "conversation", "seq", "kind", "created_at")
    list_filter = ("kind", "created_at")
    list_select_related = ("sender", "conversation")
    search_fields = (
        "=public_id",
        "=conversation__public_id",
        "sender__email",
        "sender__display_name",
        "content",
    )
    ordering = ("-pk",)
    # Counting every message for "N total" is a full scan on a large table.
    show_full_result_count = False
    fields = (
        "public_id",
        "conversation",
        "seq",
        "sender",
        "kind",
        "client_message_id",
        "content",
        "created_at",
        "edited_at",
        "deleted_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
