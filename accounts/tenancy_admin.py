"""Admin for tenant apps, their users' handles and registered tokens.

Secrets are shown masked; a new one is shown once, in the message after the rotation that made
it. Rotation and revocations are actions that go through the services (accounts.tenancy), ask
for a reason and are recorded in the moderation log; the fields behind them are read-only.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from . import tenancy
from .models import App, IdHandle, RegisteredToken, mask_secret
from .moderation_admin import action_with_reason


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "name",
        "owner",
        "is_active",
        "secret_1_masked",
        "secret_2_masked",
        "created_at",
    )
    search_fields = ("public_id", "name", "owner__email")
    raw_id_fields = ("owner",)  # the dashboard user who manages it (CHAT SERVER's /app)
    ordering = ("-created_at",)
    fields = (
        "public_id",
        "name",
        "owner",
        "is_active",
        "verify_url",
        "allowed_protocols",
        "secret_1_masked",
        "secret_1_created_at",
        "secret_2_masked",
        "secret_2_created_at",
        "tokens_revoked_before",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "public_id",
        "secret_1_masked",
        "secret_1_created_at",
        "secret_2_masked",
        "secret_2_created_at",
        "tokens_revoked_before",
        "created_at",
        "updated_at",
    )
    actions = ("rotate_key", "revoke_tokens")

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "verify_url":
            kwargs["assume_scheme"] = "https"  # Django 6's default, asked for now
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="Secret 1")
    def secret_1_masked(self, app: App) -> str:
        return mask_secret(app.secret_1)

    @admin.display(description="Secret 2")
    def secret_2_masked(self, app: App) -> str:
        return mask_secret(app.secret_2)

    def save_model(self, request: HttpRequest, obj: App, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # the secrets of a new app, shown once
            self.message_user(
                request,
                f"App {obj.public_id}: secret 1 {obj.secret_1}, secret 2 {obj.secret_2}. "
                "Copy them now: they are shown masked from now on.",
                messages.WARNING,
            )

    @admin.action(description="Rotate key (replace the older of the two secrets)", permissions=["change"])
    def rotate_key(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        def apply(app: App, reason: str) -> None:
            slot, secret = tenancy.app_key_rotate_as_moderator(moderator=request.user, app=app, reason=reason)
            self.message_user(
                request,
                f"App {app.public_id}: new secret {slot} is {secret}. Copy it now: it is shown masked "
                "from now on. The other secret stays valid until the next rotation.",
                messages.WARNING,
            )

        return action_with_reason(
            self,
            request,
            queryset,
            action="rotate_key",
            apply=apply,
            title="Rotate key",
            done_label="Rotated a key of",
            noun="app(s)",
        )

    @admin.action(
        description="Revoke all tokens (closes every connection of the app's users)", permissions=["change"]
    )
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return action_with_reason(
            self,
            request,
            queryset,
            action="revoke_tokens",
            apply=lambda app, reason: tenancy.app_tokens_revoke_as_moderator(
                moderator=request.user, app=app, reason=reason
            ),
            title="Revoke tokens",
            done_label="Revoked the tokens of",
            noun="app(s)",
        )


@admin.register(IdHandle)
class IdHandleAdmin(admin.ModelAdmin):
    """Handles are listed by their public id only: the credential itself is never stored."""

    list_display = ("public_id", "app", "user", "created_at", "revoked_at")
    list_filter = ("app",)
    search_fields = ("public_id", "user__external_id", "user__public_id")
    fields = ("public_id", "app", "user", "created_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_handles",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issued through the tenant API, which shows the credential once

    @admin.action(description="Revoke selected handles (closes their connections)", permissions=["change"])
    def revoke_handles(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return action_with_reason(
            self,
            request,
            queryset.select_related("app", "user"),
            action="revoke_handles",
            apply=lambda handle, reason: tenancy.id_handle_revoke_as_moderator(
                moderator=request.user, handle=handle, reason=reason
            ),
            title="Revoke handles",
            done_label="Revoked",
            noun="handle(s)",
        )


@admin.register(RegisteredToken)
class RegisteredTokenAdmin(admin.ModelAdmin):
    """Read-only: which users have a registered token, and since when (never the token)."""

    list_display = ("user", "app", "created_at")
    list_filter = ("app",)
    fields = ("app", "user", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
