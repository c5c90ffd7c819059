"""Input and output shapes of the groups API. Inputs are strict (JSON types, no unknown fields);
the rules on names, descriptions, avatars, member lists and their limits live in the services,
shared with the sockets, so the serializers only insist on types. Outputs carry public ids only,
never integer keys, and timestamps as ISO-8601 UTC."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.serializers import StrictCharField, StrictSerializer
from messaging.models import Membership
from messaging.serializers import IsoTimeField, UserRefOutput

# Public ids are 24 characters; anything much longer cannot name a user.
USER_ID_MAX = 64


def _user_id_field(**kwargs: Any) -> StrictCharField:
    return StrictCharField(max_length=USER_ID_MAX, help_text="Public id of a user.", **kwargs)


def _text_field(help_text: str, **kwargs: Any) -> StrictCharField:
    # Blank and over-long values are refused by the services, with the same messages the sockets
    # get; DRF's CharField still refuses NUL and lone surrogates, which no database stores.
    return StrictCharField(trim_whitespace=False, allow_blank=True, help_text=help_text, **kwargs)


class GroupCreateInput(StrictSerializer):
    name = _text_field("1 to CHAT MAX_NAME_LENGTH characters, not only whitespace.")
    description = _text_field("Up to CHAT MAX_DESCRIPTION_LENGTH characters.", required=False)
    avatar_url = _text_field("An http(s) URL, or empty for none.", required=False)
    member_ids = serializers.ListField(
        child=_user_id_field(),
        required=False,
        help_text="Public ids of the other members (verified users); the caller is always the owner. "
        "At most CHAT GROUP_MAX_MEMBERS including the caller.",
    )


class GroupUpdateInput(StrictSerializer):
    name = _text_field("1 to CHAT MAX_NAME_LENGTH characters, not only whitespace.", required=False)
    description = _text_field("Up to CHAT MAX_DESCRIPTION_LENGTH characters.", required=False)
    avatar_url = _text_field("An http(s) URL, or empty to remove it.", required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # An empty PATCH would change nothing yet tell every member the group was updated.
        if not attrs:
            raise serializers.ValidationError("Give at least one of name, description, avatar_url.")
        return attrs


class UserIdInput(StrictSerializer):
    user_id = _user_id_field()


class EmptyInput(StrictSerializer):
    """A body with nothing in it (or none at all): any field is refused."""


class GroupMemberOutput(serializers.Serializer):
    """A current member (from selectors.GroupMember or a Membership)."""

    id = serializers.CharField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Membership.Role.choices, read_only=True)

    def to_representation(self, member: Any) -> dict[str, Any]:
        if isinstance(member, Membership):
            return {
                "id": member.user.public_id,
                "display_name": member.user.display_name,
                "role": member.role,
            }
        return {"id": member.id, "display_name": member.name, "role": member.role}


class GroupMemberListOutput(serializers.Serializer):
    results = GroupMemberOutput(many=True, read_only=True)


class GroupSummaryOutput(serializers.Serializer):
    """A group in the caller's list (from selectors.ConversationSummary)."""

    id = serializers.CharField(read_only=True)
    name = serializers.CharField(source="title", read_only=True, allow_null=True)
    last_message_at = IsoTimeField()
    last_seq = serializers.IntegerField(read_only=True)
    unread = serializers.IntegerField(read_only=True)


class GroupListOutput(serializers.Serializer):
    results = GroupSummaryOutput(many=True, read_only=True)


class GroupDetailOutput(serializers.Serializer):
    """A group as a member sees it (from apis.GroupDetail)."""

    id = serializers.CharField(source="conversation.public_id", read_only=True)
    name = serializers.CharField(source="conversation.title", read_only=True)
    description = serializers.SerializerMethodField()
    avatar_url = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    members = GroupMemberOutput(many=True, read_only=True)
    # A plain string in the schema: a second field with the same choices would make
    # drf-spectacular name the enum twice (RoleEnum, MyRoleEnum).
    my_role = serializers.CharField(read_only=True, help_text="owner, admin or member: as in `members`.")
    created_at = IsoTimeField(source="conversation.created_at")

    def get_description(self, detail: Any) -> str:
        return detail.group.description if detail.group else ""

    def get_avatar_url(self, detail: Any) -> str:
        return detail.group.avatar_url if detail.group else ""

    @extend_schema_field(UserRefOutput(allow_null=True))
    def get_owner(self, detail: Any) -> dict[str, str] | None:
        owner = next((m for m in detail.members if m.role == Membership.Role.OWNER), None)
        return {"id": owner.id, "display_name": owner.name} if owner else None
