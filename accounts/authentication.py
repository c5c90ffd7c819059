"""DRF authentication for the native API: `Authorization: Bearer <access>`.

Unlike simplejwt's stock class, it also refuses tokens of a revoked session and banned or
deactivated users, so logout and bans take effect on REST at once.
"""

from rest_framework import authentication, exceptions

from chatproject.core.errors import ApplicationError

from .models import User
from .tokens import access_decode, user_for_claims


class ChatJWTAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request) -> tuple[User, str] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            token = header[1].decode("ascii")
            user = user_for_claims(access_decode(token))
        except (UnicodeDecodeError, ApplicationError) as exc:
            message = exc.message if isinstance(exc, ApplicationError) else "Invalid token."
            raise exceptions.AuthenticationFailed(message) from exc
        return user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
