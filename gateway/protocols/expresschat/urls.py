"""ExpressChat-compatible routes, included at the root.

Express matches routes case-insensitively (/Verify is what the README links to), so these do
too. The patterns spell each letter as a class ([vV]...) instead of using (?i): Django cannot
reverse a pattern with an inline flag, and one such pattern breaks every reverse() in the
project (the admin included).
"""

from django.urls import re_path

from . import rest as expresschat


def _route(path: str) -> str:
    letters = "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in path)
    return rf"^{letters}\Z"


app_name = "expresschat"

urlpatterns = [
    re_path(_route("signup"), expresschat.signup, name="signup"),
    re_path(_route("login"), expresschat.login, name="login"),
    re_path(_route("verify"), expresschat.verify, name="verify"),
    re_path(_route("resend"), expresschat.resend, name="resend"),
    re_path(_route("logout"), expresschat.logout, name="logout"),
    re_path(_route("update-access-token"), expresschat.update_access_token, name="update-access-token"),
]
