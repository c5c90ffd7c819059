"""Admin for groups: a place to find and look at groups, not a second write path.

Every membership or role change must produce its system message and its live events, and only
the services do that. The services authorise the actor as an admin *of the group*; a staff
moderator is usually not one, and no service has a moderator path yet. So members are shown
read-only (a Membership cannot be an inline here anyway: its key points at the conversation, not
at the group) and the only action is deletion through `group_delete`, which the service allows
only to a staff user who is an admin of that group and refuses, visibly, for everyone else.
Nothing is added or edited here: a group needs its conversation, its owner and its first system
message, and renames must be announced.
"""

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from chatproject.core.errors import ApplicationError
from messaging.models import Membership

from . import services
from .models import Group


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("title", "public_id", "short_description", "member_count", "created_at")
    list_select_related = ("conversation",)
    search_fields = ("conversation__title", "=conversation__public_id")
    ordering = ("-created_at",)
    fields = (
        "title",
        "public_id",
        "description",
        "avatar_url",
        "created_by",
        "created_at",
        "updated_at",
        "members",
    )
    readonly_fields = fields
    actions = ("delete_groups",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Group]:
        current = Q(conversation__memberships__left_at__isnull=True)
        return (
            super()
            .get_queryset(request)
            .annotate(_members=Count("conversation__memberships", filter=current))
        )

    @admin.display(description="Name", ordering="conversation__title")
    def title(self, group: Group) -> str:
        return group.conversation.title

    @admin.display(description="Public id", ordering="conversation__public_id")
    def public_id(self, group: Group) -> str:
        return group.conversation.public_id

    @admin.display(description="Description")
    def short_description(self, group: Group) -> str:
        return group.description[:80]

    @admin.display(description="Members", ordering="_members")
    def member_count(self, group: Group) -> int:
        return group._members

    @admin.display(description="Memberships (current and former)")
    def members(self, group: Group) -> str:
        rows = (
            Membership.objects.filter(conversation_id=group.conversation_id)
            .select_related("user")
            .order_by("joined_at", "pk")
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (m.user.display_name, m.user.public_id, m.get_role_display(), m.joined_at, m.left_at or "")
                for m in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>User</th><th>Id</th><th>Role</th><th>Joined</th><th>Left</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Django's own delete would skip the service: no `group.deleted` event would reach the
        # members' sockets. `delete_groups` below goes through it.
        return False

    @admin.action(description="Delete selected groups (only groups you are an admin of)")
    def delete_groups(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        done = 0
        for group in queryset.select_related("conversation"):
            try:
                services.group_delete(user=request.user, group_id=group.conversation.public_id)
            except ApplicationError as exc:
                self.message_user(request, f"{group}: not deleted ({exc.message})", messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"Deleted {done} group(s).", messages.SUCCESS)
