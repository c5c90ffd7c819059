"""The endpoints added for receipts and presence, as mounted in the project's urls, for the
schema test: warnings from other endpoints must not fail (or hide) these."""

from django.urls import include, path

from accounts import apis as account_apis

urlpatterns = [
    path("api/users/me/settings", account_apis.UserSettingsApi.as_view()),
    path("api/", include("messaging.urls")),
    path("api/", include("gateway.urls")),
]
