"""The web client's pages (templates/): log in, sign up and verify at /auth, the chat at /.

/auth matches case-insensitively, as the ExpressChat server it replaces did (each letter is a
class: Django cannot reverse a pattern with an inline (?i) flag).
"""

from pathlib import Path

from django.conf import settings
from django.urls import re_path
from django.views.generic import TemplateView


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


urlpatterns = [
    re_path(
        r"^[aA][uU][tT][hH]\Z",
        TemplateView.as_view(
            template_name="auth.html", extra_context={"dev_mail_folder": _dev_mail_folder()}
        ),
        name="auth",
    ),
    re_path(r"^\Z", TemplateView.as_view(template_name="home.html"), name="home"),
]
