"""Small pieces every REST view module shares: the error body's schema and strict validation."""

from typing import Any

from rest_framework import serializers


class ErrorOutput(serializers.Serializer):
    """The one error shape of the native API: {"code", "message", "extra"}."""

    code = serializers.CharField(read_only=True)
    message = serializers.CharField(read_only=True)
    extra = serializers.DictField(read_only=True)


def error_responses(*statuses: int) -> dict[int, type[ErrorOutput]]:
    """drf-spectacular `responses` entries for the error statuses a view can answer."""
    return dict.fromkeys(statuses, ErrorOutput)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate with a (strict) serializer; a failure becomes the API's 400 error."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
