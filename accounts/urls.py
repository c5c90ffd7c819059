"""Native API routes of the accounts app, included under /api/."""

from django.urls import path, re_path

from . import apis

app_name = "accounts"

urlpatterns = [
    path("auth/signup", apis.SignupApi.as_view(), name="signup"),
    path("auth/verify", apis.VerifyApi.as_view(), name="verify"),
    path("auth/resend", apis.ResendApi.as_view(), name="resend"),
    path("auth/login", apis.LoginApi.as_view(), name="login"),
    path("auth/refresh", apis.RefreshApi.as_view(), name="refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="logout"),
    path("auth/logout-all", apis.LogoutEverywhereApi.as_view(), name="logout-all"),
    path("users/me", apis.MeApi.as_view(), name="user-me"),
    path("users/me/settings", apis.UserSettingsApi.as_view(), name="user-settings"),
    path("users/search", apis.UserSearchApi.as_view(), name="user-search"),
    # A regex, not a registered path converter: converter names are global and shared with
    # the other apps.
    re_path(r"^users/(?P<public_id>[0-9a-f]{24})\Z", apis.UserDetailApi.as_view(), name="user-detail"),
    path("friends", apis.FriendsApi.as_view(), name="friends"),
    re_path(r"^friends/(?P<public_id>[0-9a-f]{24})\Z", apis.FriendDetailApi.as_view(), name="friend-detail"),
]
