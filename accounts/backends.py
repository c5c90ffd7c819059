"""Authentication backend for session logins (the admin, the browsable API).

Django's ModelBackend lets in anyone active. This one also requires a verified email and no
ban, and since `get_user` applies the same rule, a ban also ends existing browser sessions.
Enable with AUTHENTICATION_BACKENDS = ["accounts.backends.ChatModelBackend"].
"""

from django.contrib.auth.backends import ModelBackend

from chatproject.core.errors import ApplicationError

from . import services


class ChatModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        """The admin's and the browsable API's password logins, under the same per-account
        backoff as the API's (services.user_authenticate): a waiting account is refused without
        its password being checked, and each failure counts."""
        email = username if isinstance(username, str) else kwargs.get("email")
        if not isinstance(email, str):
            return None
        try:
            services.login_backoff_check(email)
        except ApplicationError:
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            services.login_failed(email)
        else:
            services.login_failures_forget(email)
        return user

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and user.email_verified and not user.is_banned
