"""Input and output shapes of the native API. Inputs are strict: strings must be JSON strings
(DRF would turn 12 into "12"), lengths are bounded, unknown fields are an error."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import serializers

from chatproject.core.api import ErrorOutput  # noqa: F401 - the error schema, shared
from chatproject.core.timefmt import iso_ms

from .selectors import user_email_visible
from .services import EMAIL_MAX_LENGTH, password_max_length


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare, so typos and injected keys are not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def _password_field() -> StrictCharField:
    return StrictCharField(
        max_length=password_max_length(), trim_whitespace=False, style={"input_type": "password"}
    )


class SignupInput(StrictSerializer):
    email = StrictEmailField(max_length=EMAIL_MAX_LENGTH)
    password = _password_field()
    display_name = StrictCharField(max_length=settings.CHAT["MAX_NAME_LENGTH"])


class VerifyInput(StrictSerializer):
    email = StrictEmailField(max_length=EMAIL_MAX_LENGTH)
    code = StrictCharField(min_length=6, max_length=6)


class ResendInput(StrictSerializer):
    email = StrictEmailField(max_length=EMAIL_MAX_LENGTH)


class LoginInput(StrictSerializer):
    # A plain string, not an email check: a malformed address must fail like a wrong password.
    email = StrictCharField(max_length=EMAIL_MAX_LENGTH)
    password = _password_field()


class RefreshInput(StrictSerializer):
    refresh = StrictCharField(max_length=4096)


class SearchQuery(serializers.Serializer):
    # Query strings: other parameters (DRF's ?format=) are allowed.
    q = StrictCharField(max_length=EMAIL_MAX_LENGTH)


class UserOutput(serializers.Serializer):
    """A user as clients see it. `email` only for the user themselves (or when
    CHAT SEARCH_EXPOSE_EMAILS is on); integer keys never."""

    id = serializers.CharField(source="public_id", read_only=True)
    display_name = serializers.CharField(read_only=True)
    # Not read_only: read-only fields are "required" in the schema, and this one is optional.
    email = serializers.EmailField(required=False)
    created_at = serializers.SerializerMethodField()

    def get_created_at(self, user) -> str:
        return iso_ms(user.created_at)

    def to_representation(self, user) -> dict[str, Any]:
        data = super().to_representation(user)
        if not user_email_visible(user=user, viewer=self.context.get("viewer")):
            data.pop("email", None)
        return data


class UserListOutput(serializers.Serializer):
    results = UserOutput(many=True, read_only=True)


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


class LoginOutput(TokenPairOutput):
    user = UserOutput(read_only=True)


class VerificationSentOutput(serializers.Serializer):
    email = serializers.EmailField(read_only=True)
    code_expires_at = serializers.CharField(read_only=True)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: DRF would also take "yes", 1 and "on"."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class UserSettingsInput(StrictSerializer):
    presence_hidden = StrictBooleanField(
        required=False, help_text="Others see you offline, without a last-seen time."
    )
    read_receipts_enabled = StrictBooleanField(
        required=False,
        help_text="Off: nobody sees when you read or received messages, and you see nobody's receipts.",
    )


class UserSettingsOutput(serializers.Serializer):
    presence_hidden = serializers.BooleanField(read_only=True)
    read_receipts_enabled = serializers.BooleanField(read_only=True)


class FriendInput(StrictSerializer):
    user_id = StrictCharField(max_length=24)
