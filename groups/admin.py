"""Admin for groups: find and look at groups, and moderate them through the services.

Every membership or role change must produce its system message and its live events, and only
the services do that, so nothing is added or edited with Django's own forms. A Membership cannot
be a real inline here (its key points at the conversation, not at the group), so the group's page
shows its members as a table, and each current member links to two moderation pages: remove the
member, and change their role. Those pages, and the delete action, ask for a reason and call the
moderator services (`group_member_remove_as_moderator`, `group_role_set_as_moderator`,
`group_delete_as_moderator`): a staff moderator need not be an admin of the group, every change
is recorded in the moderation log, and connected members see it applied live.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from accounts.moderation_admin import ReasonForm, action_with_reason, reason_page
from chatproject.core.errors import ApplicationError
from messaging.models import Membership

from . import services
from .models import Group


class RoleForm(ReasonForm):
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        help_text="Making a member the owner moves ownership: the previous owner stays an admin.",
    )
    field_order = ("role", "reason")


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

    def _moderation_links(self, group: Group, membership: Membership) -> str:
        if membership.left_at is not None:
            return ""
        args = [group.pk, membership.user.public_id]
        return format_html(
            '<a href="{}">Change role…</a> · <a href="{}">Remove…</a>',
            reverse(f"{self.admin_site.name}:groups_group_member_role", args=args),
            reverse(f"{self.admin_site.name}:groups_group_member_remove", args=args),
        )

    @admin.display(description="Memberships (current and former)")
    def members(self, group: Group) -> str:
        rows = (
            Membership.objects.filter(conversation_id=group.conversation_id)
            .select_related("user")
            .order_by("joined_at", "pk")
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    m.user.display_name,
                    m.user.public_id,
                    m.get_role_display(),
                    m.joined_at,
                    m.left_at or "",
                    self._moderation_links(group, m),
                )
                for m in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>User</th><th>Id</th><th>Role</th><th>Joined</th><th>Left</th>"
            "<th>Moderation</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Django's own delete would skip the service: no `group.deleted` event would reach the
        # members' sockets, and no record. `delete_groups` below goes through it.
        return False

    def has_moderate_delete_permission(self, request: HttpRequest) -> bool:
        """Who sees the delete action; `group_delete_as_moderator` checks again."""
        return request.user.has_perm(services.PERMISSION_DELETE)

    @admin.action(description="Delete selected groups (asks for a reason)", permissions=["moderate_delete"])
    def delete_groups(self, request: HttpRequest, queryset: QuerySet[Group]) -> TemplateResponse | None:
        """Asks for a reason, then deletes each group; members see it go live."""
        return action_with_reason(
            self,
            request,
            queryset.select_related("conversation"),
            action="delete_groups",
            apply=lambda group, reason: services.group_delete_as_moderator(
                moderator=request.user, group_id=group.conversation.public_id, reason=reason
            ),
            title="Delete groups",
            done_label="Deleted",
            noun="group(s)",
            describe=lambda group: f"{group} ({group.conversation.public_id})",
        )

    # --- member moderation pages ----------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        # Before the defaults: their "<path:object_id>/" catch-all would take these paths.
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/members/<str:member_id>/remove/",
                view(self.member_remove_view),
                name="groups_group_member_remove",
            ),
            path(
                "<path:object_id>/members/<str:member_id>/role/",
                view(self.member_role_view),
                name="groups_group_member_role",
            ),
            *super().get_urls(),
        ]

    def _member_or_404(
        self, request: HttpRequest, object_id: str, member_id: str
    ) -> tuple[Group, Membership]:
        if not request.user.has_perm(services.PERMISSION_MEMBERS):
            raise PermissionDenied
        group = self.get_object(request, object_id)
        if group is None:
            raise Http404("No such group.")
        membership = (
            Membership.objects.filter(
                conversation_id=group.conversation_id, user__public_id=member_id, left_at__isnull=True
            )
            .select_related("user")
            .first()
        )
        if membership is None:
            raise Http404("Not a current member of this group.")
        return group, membership

    def _back(self, group: Group) -> HttpResponse:
        return redirect(f"{self.admin_site.name}:groups_group_change", group.pk)

    def member_remove_view(self, request: HttpRequest, object_id: str, member_id: str) -> HttpResponse:
        """Called for a group member's "Remove…" page: asks for a reason, then removes them."""
        group, membership = self._member_or_404(request, object_id, member_id)
        name = membership.user.display_name
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                services.group_member_remove_as_moderator(
                    moderator=request.user,
                    group_id=group.conversation.public_id,
                    member_id=member_id,
                    reason=form.cleaned_data["reason"],
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Removed {name} from {group}.", messages.SUCCESS)
                return self._back(group)
        return reason_page(
            self,
            request,
            form=form,
            title="Remove a member",
            intro=f"Remove {name} from the group {group}. The members see it happen.",
            targets=[f"{name} ({member_id}), {membership.get_role_display()}"],
            submit_label="Remove member",
        )

    def member_role_view(self, request: HttpRequest, object_id: str, member_id: str) -> HttpResponse:
        """Called for a group member's "Change role…" page: asks for a role and a reason."""
        group, membership = self._member_or_404(request, object_id, member_id)
        name = membership.user.display_name
        form = RoleForm(request.POST if request.method == "POST" else None, initial={"role": membership.role})
        if form.is_valid():
            try:
                services.group_role_set_as_moderator(
                    moderator=request.user,
                    group_id=group.conversation.public_id,
                    member_id=member_id,
                    role=form.cleaned_data["role"],
                    reason=form.cleaned_data["reason"],
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                role = Membership.Role(form.cleaned_data["role"]).label
                self.message_user(request, f"{name} is now {role.lower()} of {group}.", messages.SUCCESS)
                return self._back(group)
        return reason_page(
            self,
            request,
            form=form,
            title="Change a member's role",
            intro=f"Change the role of {name} in the group {group}.",
            targets=[f"{name} ({member_id}), now {membership.get_role_display()}"],
            submit_label="Change role",
        )
