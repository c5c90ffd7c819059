"""CZ Messenger's REST routes under /v1/conversations (spec §5)."""

app_name = "czmessenger"

urlpatterns: list = []
