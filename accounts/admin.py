"""Admin for users, their login sessions, and the moderation log.

State changes that must reach live sockets (ban, deactivation) are actions that go through the
services; the fields behind them are read-only in the form, so a save cannot bypass them.
Bans and unbans are moderation: they ask for a reason and are recorded in the moderation log,
which is read-only here (its rows are written only by the moderation services).
Password hashes are never shown.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from chatproject.core.errors import ApplicationError

from . import bans, services, tenancy, tenancy_admin  # noqa: F401  (tenancy_admin registers its models)
from .models import LoginSession, ModerationAction, User
from .moderation_admin import action_with_reason


def _each(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, action, verb: str) -> None:
    done = 0
    for user in queryset:
        try:
            action(user=user, by=request.user)
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{user.email}: {exc.message}", messages.WARNING)
        else:
            done += 1
    modeladmin.message_user(request, f"{verb} {done} user(s).", messages.SUCCESS)


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "email",
        "display_name",
        "app",
        "external_id",
        "email_verified",
        "is_active",
        "is_banned",
        "created_at",
    )
    list_filter = ("email_verified", "is_active", "is_banned", "is_staff", "app")
    search_fields = ("email", "display_name", "public_id", "external_id")
    ordering = ("-created_at",)
    actions = (
        "ban_users",
        "unban_users",
        "verify_users",
        "deactivate_users",
        "activate_users",
        "revoke_tenant_tokens",
    )
    # No "password": hashes are neither shown nor editable here.
    fields = (
        "public_id",
        "email",
        "app",
        "external_id",
        "display_name",
        "avatar_url",
        "tokens_revoked_before",
        "email_verified",
        "is_active",
        "is_banned",
        "banned_at",
        "ban_reason",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "last_login",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "public_id",
        "email",
        "app",
        "external_id",
        "tokens_revoked_before",
        "email_verified",
        "is_active",
        "is_banned",
        "banned_at",
        "ban_reason",
        "last_login",
        "created_at",
        "updated_at",
    )
    filter_horizontal = ("groups", "user_permissions")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts come from sign-up (which verifies the mailbox) or `createsuperuser`.
        return False

    @admin.action(description="Ban selected users (ends their sessions and sockets)", permissions=["change"])
    def ban_users(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        """Asks for a reason, then bans each user and records it in the moderation log."""
        return action_with_reason(
            self,
            request,
            queryset,
            action="ban_users",
            apply=lambda user, reason: bans.user_ban_as_moderator(
                moderator=request.user, user=user, reason=reason
            ),
            title="Ban users",
            done_label="Banned",
            noun="user(s)",
            describe=lambda user: user.email,
        )

    @admin.action(description="Revoke tenant tokens of selected external users", permissions=["change"])
    def revoke_tenant_tokens(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        """Asks for a reason, then refuses the users' tenant credentials issued before now
        (closing their connections) and records it in the moderation log."""
        return action_with_reason(
            self,
            request,
            queryset.select_related("app"),
            action="revoke_tenant_tokens",
            apply=lambda user, reason: tenancy.user_tokens_revoke_as_moderator(
                moderator=request.user, user=user, reason=reason
            ),
            title="Revoke tenant tokens",
            done_label="Revoked the tokens of",
            noun="user(s)",
            describe=str,
        )

    @admin.action(description="Unban selected users", permissions=["change"])
    def unban_users(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        """Asks for a reason, then lifts each ban and records it in the moderation log."""
        return action_with_reason(
            self,
            request,
            queryset,
            action="unban_users",
            apply=lambda user, reason: bans.user_unban_as_moderator(
                moderator=request.user, user=user, reason=reason
            ),
            title="Unban users",
            done_label="Unbanned",
            noun="user(s)",
            describe=lambda user: user.email,
        )

    @admin.action(description="Mark selected users' emails as verified", permissions=["change"])
    def verify_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        _each(self, request, queryset, services.user_mark_verified, "Verified")

    @admin.action(
        description="Deactivate selected users (ends their sessions and sockets)", permissions=["change"]
    )
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        _each(self, request, queryset, services.user_deactivate, "Deactivated")

    @admin.action(description="Reactivate selected users", permissions=["change"])
    def activate_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        _each(self, request, queryset, services.user_activate, "Reactivated")


@admin.register(LoginSession)
class LoginSessionAdmin(admin.ModelAdmin):
    list_display = ("sid", "user", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("sid", "user__email", "user__public_id")
    list_select_related = ("user",)
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Deleting a row would skip the logout path (no bus event; live sockets stay open).
        return False


@admin.register(ModerationAction)
class ModerationActionAdmin(admin.ModelAdmin):
    """The moderation log: who did what to which object, when and why. Read-only."""

    list_display = ("created_at", "moderator", "action", "target_type", "target_id", "short_reason")
    list_filter = ("action", "target_type", "created_at")
    list_select_related = ("moderator",)
    search_fields = ("=target_id", "moderator__email", "reason")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    fields = ("created_at", "moderator", "action", "target_type", "target_id", "reason", "extra")
    readonly_fields = fields

    @admin.display(description="Reason")
    def short_reason(self, record: ModerationAction) -> str:
        return record.reason if len(record.reason) <= 80 else f"{record.reason[:79]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # A log anyone with access can prune is no record.
        return False
