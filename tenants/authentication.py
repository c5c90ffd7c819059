"""Authentication of tenant backends: `Authorization: AppKey <app id>:<secret>`.

Only this class authenticates the tenant API: no cookies, no sessions, and no CORS headers
(settings CORS_URLS_REGEX): a page in a visitor's browser has no credential it could ride on.
The app becomes `request.auth`; `request.user` stays anonymous.
"""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions

from accounts.models import App
from accounts.tenancy import app_authenticate
from chatproject.core.errors import ApplicationError

KEYWORD = "AppKey"


class AppKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request) -> tuple[AnonymousUser, App] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: AppKey <app id>:<secret>.")
        try:
            app_id, _, secret = header[1].decode("ascii").partition(":")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Unknown app or wrong key.") from exc
        try:
            return AnonymousUser(), app_authenticate(app_id=app_id, secret=secret)
        except ApplicationError as exc:
            raise exceptions.AuthenticationFailed(exc.message) from exc

    def authenticate_header(self, request) -> str:
        return KEYWORD


class IsApp(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, App)
