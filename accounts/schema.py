"""drf-spectacular description of the project's Bearer authentication (loaded in apps.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ChatJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ChatJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from /api/auth/login, /api/auth/verify or /api/auth/refresh.",
        }


class ChatCookieAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ChatCookieAuthentication"
    name = "accessCookieAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "access_token",
            "description": "The web client's httpOnly cookie from POST /login or /verify. Unsafe methods "
            "also need the CSRF token in X-CSRFToken.",
        }
