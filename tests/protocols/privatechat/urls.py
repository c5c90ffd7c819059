"""The private chat app's routes first, then the project's: REST tests run in process, without
the mount in the settings the project's urlconf was built from. (test_rest.py imports
chatproject.urls before any test changes the settings: its routes are computed once, from the
registry, when it is first imported.)"""

from django.urls import include, path

from chatproject.urls import urlpatterns as project

urlpatterns = [path("", include("gateway.protocols.privatechat.urls")), *project]
