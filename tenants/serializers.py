"""Shapes of the tenant API (the OpenAPI description; the services validate every field)."""

from rest_framework import serializers


class UserUpsertInput(serializers.Serializer):
    id = serializers.CharField(help_text="The app's own id for the user: 1-64 of A-Z a-z 0-9 _ -")
    name = serializers.CharField(required=False, help_text="Display name, 1-100 characters")
    avatar_url = serializers.CharField(required=False, allow_blank=True)


class UserOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The app's id for the user")
    user_id = serializers.CharField(help_text="The server's public id for the user (what clients see)")
    name = serializers.CharField()
    avatar_url = serializers.CharField()
    created = serializers.BooleanField()


class TokenRegisterInput(serializers.Serializer):
    token = serializers.CharField(help_text="An opaque token (8-4096 characters); only its hash is kept")


class HandleOutput(serializers.Serializer):
    handle_id = serializers.CharField(help_text="Names the handle (for revocation); not a credential")
    handle = serializers.CharField(required=False, help_text="The credential itself: shown once")
    user_id = serializers.CharField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class RevokedOutput(serializers.Serializer):
    revoked_before = serializers.DateTimeField()


class ConversationCreateInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["direct", "group"])
    members = serializers.ListField(child=serializers.CharField(), help_text="The app's user ids")
    title = serializers.CharField(required=False, help_text="Group name (groups only)")
    created_by = serializers.CharField(required=False, help_text="Group owner (default: the first member)")


class ConversationOutput(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    created = serializers.BooleanField()


class SystemMessageInput(serializers.Serializer):
    text = serializers.CharField(help_text="1-2000 characters")


class SystemMessageOutput(serializers.Serializer):
    id = serializers.CharField()
    seq = serializers.IntegerField()
