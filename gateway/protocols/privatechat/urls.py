"""The private chat app's routes, included at the site root (spec §1.2: no prefix; `search` and
`signin` before `:userId`). `GET /` answers the original's greeting on the mount's own host or
port only (gateway/mount_urls.py puts these routes first there; elsewhere the web client keeps
`/`). The original's collection-wiping DELETE routes and its broken /message and /room routes
are not served."""

from django.urls import re_path

from . import rest

app_name = "privatechat"

urlpatterns = [
    re_path(r"^\Z", rest.WelcomeApi.as_view(), name="welcome"),
    re_path(r"^user/?\Z", rest.SignupApi.as_view(), name="signup"),
    re_path(r"^user/signin/?\Z", rest.SigninApi.as_view(), name="signin"),
    re_path(r"^user/search/?\Z", rest.SearchApi.as_view(), name="search"),
    re_path(r"^user/(?P<user_id>[^/]{1,100})/?\Z", rest.ProfileApi.as_view(), name="profile"),
]
