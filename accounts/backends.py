"""Authentication backend for session logins (the admin, the browsable API).

Django's ModelBackend lets in anyone active. This one also requires a verified email and no
ban, and since `get_user` applies the same rule, a ban also ends existing browser sessions.
Enable with AUTHENTICATION_BACKENDS = ["accounts.backends.ChatModelBackend"].
"""

from django.contrib.auth.backends import ModelBackend


class ChatModelBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and user.email_verified and not user.is_banned
