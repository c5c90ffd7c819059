"""Admin for conversations and messages: a place to look, and to moderate through services.

Nothing is added here: a conversation needs its members and its key, a message its sequence
number, and only the services allocate those. Every field is read-only: kind, keys, sequence
numbers and a message's conversation and sender carry invariants, and an edit of a message's
text or of its deleted_at would bypass the services, so no client would hear of it. Nothing is
deleted with Django's own delete either: a hard-deleted message leaves a hole in the sequence
that clients take for a lost message. Moderators instead hide or delete (tombstone) messages
with the two actions below, which ask for a reason and go through `message_moderate`: the
change is recorded in the moderation log and connected members see it applied live.
"""

import operator
import re
from datetime import date, datetime, time, timedelta
from functools import reduce

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.moderation_admin import action_with_reason
from chatproject.core.ids import is_public_id

from . import services
from .models import ChatRequest, Conversation, Membership, Message


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


class IdSearch:
    """Search by a public id through the ids' own indexes. Django's `=public_id` compares
    UPPER(public_id) with UPPER(term), which no index serves, and the message admin searches its
    other fields (text, names) in the same query: a pasted id read every message. A term that
    is an id (in any case) is looked up exactly, in `id_search_fields` only. A related object's
    id (`conversation__public_id`) is looked up in its own table first, so the listed table is
    read through its index on the relation."""

    id_search_fields: tuple[str, ...] = ("public_id",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip().lower()
        if not is_public_id(term):
            return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        found = []
        for path in self.id_search_fields:
            relation, _, field = path.rpartition("__")
            if not relation:
                found.append(Q(**{path: term}))
                continue
            related = queryset.model._meta.get_field(relation).related_model._default_manager
            pk = related.filter(**{field: term}).values_list("pk", flat=True).first()
            if pk is not None:
                found.append(Q(**{relation: pk}))
        if not found:
            return queryset.none(), False
        return queryset.filter(reduce(operator.or_, found)), False


@admin.register(Conversation)
class ConversationAdmin(IdSearch, admin.ModelAdmin):
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


@admin.register(ChatRequest)
class ChatRequestAdmin(IdSearch, admin.ModelAdmin):
    """Read-only, like conversations: a decision belongs to the recipient (the services)."""

    list_display = ("public_id", "state", "requester", "recipient", "created_at", "decided_at")
    list_filter = ("state",)
    list_select_related = ("requester", "recipient")
    search_fields = ("=public_id", "=conversation__public_id")
    id_search_fields = ("public_id", "conversation__public_id")
    ordering = ("-created_at",)
    fields = ("public_id", "state", "conversation", "requester", "recipient", "created_at", "decided_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(term: str) -> date | None:
    term = term.strip()
    if not DAY.match(term):
        return None
    try:
        return date.fromisoformat(term)
    except ValueError:
        return None


@admin.register(Message)
class MessageAdmin(IdSearch, admin.ModelAdmin):
    list_display = ("public_id", "sender", "conversation", "seq", "kind", "status", "created_at")
    list_filter = (
        "kind",
        "created_at",
        ("hidden_at", admin.EmptyFieldListFilter),
        ("deleted_at", admin.EmptyFieldListFilter),
    )
    list_select_related = ("sender", "conversation")
    search_fields = (
        "=public_id",
        "=conversation__public_id",
        "sender__email",
        "sender__display_name",
        "content",
    )
    id_search_fields = ("public_id", "conversation__public_id")
    search_help_text = "A message or conversation id, a sender's email or name, text, or a day (YYYY-MM-DD)."
    actions = ("hide_messages", "delete_messages")
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
        "hidden_at",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        """A day (YYYY-MM-DD, in the server's time zone) finds that day's messages; an id finds
        that message or that conversation's messages (`IdSearch`); anything else is searched as
        usual."""
        day = _day(search_term)
        if day is None:
            return super().get_search_results(request, queryset, search_term)
        start = timezone.make_aware(datetime.combine(day, time.min))
        return queryset.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1)), False

    @admin.display(description="Status")
    def status(self, message: Message) -> str:
        if message.deleted_at is not None:
            return "deleted"
        if message.hidden_at is not None:
            return "hidden"
        return ""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        """Who sees the moderation actions; `message_moderate` checks again."""
        return request.user.has_perm(services.MODERATE_PERMISSION)

    def _moderate(
        self, request: HttpRequest, queryset: QuerySet[Message], action: str, verb: str
    ) -> TemplateResponse | None:
        return action_with_reason(
            self,
            request,
            queryset,
            action=f"{verb}_messages",
            apply=lambda message, reason: services.message_moderate(
                moderator=request.user, message_id=message.public_id, action=action, reason=reason
            ),
            title=f"{verb.capitalize()} messages",
            done_label="Hidden" if action == services.MODERATE_HIDE else "Deleted",
            noun="message(s)",
            describe=lambda message: (
                f"{message.public_id} (#{message.seq} in {message.conversation.public_id})"
            ),
        )

    @admin.action(
        description="Hide selected messages (text kept for moderators, blanked for members)",
        permissions=["moderate"],
    )
    def hide_messages(self, request: HttpRequest, queryset: QuerySet[Message]) -> TemplateResponse | None:
        """Asks for a reason, then hides each message; members see it blanked live."""
        return self._moderate(request, queryset, services.MODERATE_HIDE, "hide")

    @admin.action(
        description="Delete selected messages (text erased, a tombstone stays)", permissions=["moderate"]
    )
    def delete_messages(self, request: HttpRequest, queryset: QuerySet[Message]) -> TemplateResponse | None:
        """Asks for a reason, then erases each message's text; members see it removed live."""
        return self._moderate(request, queryset, services.MODERATE_DELETE, "delete")
