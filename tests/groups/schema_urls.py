"""Only the groups API, as mounted in chatproject/urls.py, for the schema test: warnings from
other apps' endpoints must not fail (or hide) this app's."""

from django.urls import include, path

urlpatterns = [path("api/", include("groups.urls"))]
