"""The project's routes plus CHAT SERVER's, for REST tests run without the mount in settings."""

from django.urls import include, path

from chatproject.urls import urlpatterns as project

urlpatterns = [*project, path("", include("gateway.protocols.chatserver.urls"))]
