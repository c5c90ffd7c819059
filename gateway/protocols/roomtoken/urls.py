"""Seed 002's REST history (spec §5), with and without the trailing slash."""

from django.urls import path

from . import rest

app_name = "roomtoken"

urlpatterns = [
    path("v1/chat", rest.chat_history, name="history"),
    path("v1/chat/", rest.chat_history, name="history-slash"),
]
