"""REST view of presence (GET /api/presence/?user_ids=a,b,c).

It lives with the transport because presence is transport state (the connections, in Redis or
in this process), not a database table; it reads it the same way the `fetch-presence` socket
event does.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import StrictCharField
from chatproject.core.api import error_responses
from chatproject.core.timefmt import iso_ms

from .presence import presence_list


class PresenceQuery(serializers.Serializer):
    # Query strings: other parameters (DRF's ?format=) are allowed.
    user_ids = StrictCharField(
        max_length=64 * 1024, allow_blank=True, help_text="Comma-separated public ids of users."
    )


class PresenceOutput(serializers.Serializer):
    user_id = serializers.CharField(read_only=True)
    online = serializers.BooleanField(read_only=True)
    state = serializers.ChoiceField(choices=["foreground", "background", "offline"], read_only=True)
    last_seen = serializers.SerializerMethodField(help_text="Only when offline, and not hidden.")

    def get_last_seen(self, presence) -> str | None:
        return iso_ms(presence.last_seen)


class PresenceListOutput(serializers.Serializer):
    results = PresenceOutput(many=True, read_only=True)


class PresenceApi(APIView):
    @extend_schema(
        tags=["presence"],
        parameters=[
            OpenApiParameter(
                "user_ids", str, required=True, description="Comma-separated public ids of users."
            )
        ],
        responses={200: PresenceListOutput, **error_responses(400, 401, 403)},
        summary="Presence of users you share a conversation with (others are left out)",
    )
    def get(self, request: Request) -> Response:
        """Called to show who is online: foreground, background or offline with a last-seen time."""
        query = PresenceQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        ids = [i for i in query.validated_data["user_ids"].split(",") if i]
        found = presence_list(viewer=request.user, user_ids=ids)
        return Response(PresenceListOutput({"results": found}).data)
