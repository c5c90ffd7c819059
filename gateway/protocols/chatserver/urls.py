"""CHAT SERVER's routes, included at the site root (spec §3.2: no prefix). Room names are any
path segment."""

from django.urls import path

from . import rest

app_name = "chatserver"

urlpatterns = [
    path("auth/login", rest.LoginApi.as_view(), name="auth-login"),
    path("auth/register", rest.RegisterApi.as_view(), name="auth-register"),
    path("auth/verify", rest.VerifyApi.as_view(), name="auth-verify"),
    path("app", rest.AppApi.as_view(), name="app"),
    path("app/<str:app_id>", rest.AppDetailApi.as_view(), name="app-detail"),
    path("user", rest.UserApi.as_view(), name="user"),
    path("user/<str:key>", rest.UserPathApi.as_view(), name="user-path"),
    path("room", rest.RoomApi.as_view(), name="room"),
    path("room/my_room", rest.MyRoomApi.as_view(), name="my-room"),
    path("room/check_room", rest.CheckRoomApi.as_view(), name="check-room"),
    path("room/add", rest.RoomMembersApi.as_view(), name="room-add"),
    path("room/remove", rest.RoomRemoveApi.as_view(), name="room-remove"),
    path("room/<str:name>", rest.RoomDetailApi.as_view(), name="room-detail"),
]
