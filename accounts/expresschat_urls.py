"""ExpressChat-compatible routes, included at the root.

Express matches routes case-insensitively (/Verify is what the README links to), so these do
too. The patterns spell each letter as a class ([vV]...) instead of using (?i): Django cannot
reverse a pattern with an inline flag, and one such pattern breaks every reverse() in the
project (the admin included).
"""

from pathlib import Path

from django.conf import settings
from django.urls import re_path
from django.views.generic import TemplateView

from . import expresschat


def _route(path: str) -> str:
    letters = "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in path)
    return rf"^{letters}\Z"


def _dev_mail_folder() -> str:
    """Where development mails are saved, for the verify page's hint: only in DEBUG with the
    file mail backend; empty (no hint) anywhere else."""
    if not settings.DEBUG or settings.EMAIL_BACKEND != "django.core.mail.backends.filebased.EmailBackend":
        return ""
    folder = Path(settings.EMAIL_FILE_PATH)
    try:
        return f"{folder.relative_to(settings.BASE_DIR)}/"
    except ValueError:
        return f"{folder}/"


app_name = "expresschat"

urlpatterns = [
    re_path(_route("signup"), expresschat.signup, name="signup"),
    re_path(_route("login"), expresschat.login, name="login"),
    re_path(_route("verify"), expresschat.verify, name="verify"),
    re_path(_route("resend"), expresschat.resend, name="resend"),
    re_path(_route("logout"), expresschat.logout, name="logout"),
    re_path(_route("update-access-token"), expresschat.update_access_token, name="update-access-token"),
    # The web client's pages (templates/): log in, sign up and verify at /auth, the chat at /.
    re_path(
        _route("auth"),
        TemplateView.as_view(
            template_name="auth.html", extra_context={"dev_mail_folder": _dev_mail_folder()}
        ),
        name="auth",
    ),
    re_path(r"^\Z", TemplateView.as_view(template_name="home.html"), name="home"),
]
