"""REST routes of the realtime layer, included under /api/."""

from django.urls import path

from . import apis

app_name = "realtime"

urlpatterns = [path("presence/", apis.PresenceApi.as_view(), name="presence")]
