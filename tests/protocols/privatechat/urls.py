"""The private chat app's routes first, then the project's: REST tests run in process, without
the mount in the settings the project's urlconf was built from."""

from django.urls import include, path

from chatproject.urls import urlpatterns as project

urlpatterns = [path("", include("gateway.protocols.privatechat.urls")), *project]
