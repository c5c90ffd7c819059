"""Routes of the tenant server API, included under /api/tenant/v1/.

Ids are matched as any path segment: a malformed id must reach the service and get the API's
own 404 or 400, not Django's HTML one."""

from django.urls import path

from . import apis

app_name = "tenants"

urlpatterns = [
    path("users", apis.UserUpsertApi.as_view(), name="user-upsert"),
    path("users/<str:external_id>/token", apis.TokenRegisterApi.as_view(), name="user-token"),
    path("users/<str:external_id>/handles", apis.HandleIssueApi.as_view(), name="user-handles"),
    path("users/<str:external_id>/revoke-tokens", apis.UserTokensRevokeApi.as_view(), name="user-revoke"),
    path("handles/<str:handle_id>", apis.HandleRevokeApi.as_view(), name="handle"),
    path("revoke-tokens", apis.AppTokensRevokeApi.as_view(), name="app-revoke"),
    path("conversations", apis.ConversationCreateApi.as_view(), name="conversations"),
    path(
        "conversations/<str:conversation_id>/system-messages",
        apis.SystemMessageApi.as_view(),
        name="system-messages",
    ),
]
