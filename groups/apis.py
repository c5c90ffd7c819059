"""Native REST API of the groups app (/api/groups/...).

Each view validates its input with a strict serializer, takes the caller from the Bearer token,
calls the same services and selectors as the sockets and renders the result. The services decide
every rule; their errors map to statuses in chatproject.core.errors: a group the caller is not a
member of is answered exactly like one that does not exist (404), a member who is not an admin
gets 403, a clash with the group's state (already a member, the last admin leaving) 409.
Group history is read through /api/conversations/{id}/messages/, like any conversation's.
"""

from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import BoundedJSONParser
from accounts.models import User
from chatproject.core.api import error_responses as _errors
from chatproject.core.api import validated as _validated
from messaging.models import Conversation

from . import selectors, services
from .models import Group
from .serializers import (
    EmptyInput,
    GroupCreateInput,
    GroupDetailOutput,
    GroupListOutput,
    GroupMemberListOutput,
    GroupMemberOutput,
    GroupUpdateInput,
    UserIdInput,
)

TAGS = ["groups"]
GROUP_ID = OpenApiParameter("group_id", str, OpenApiParameter.PATH, description="Public id of the group")
USER_ID = OpenApiParameter("user_id", str, OpenApiParameter.PATH, description="Public id of the member")


@dataclass(frozen=True)
class GroupDetail:
    conversation: Conversation
    group: Group | None
    members: list[selectors.GroupMember]
    my_role: str


def _detail(user: User, group_id: object) -> GroupDetail:
    """The group as the caller sees it, read after any change so it shows the committed state."""
    membership = selectors.group_membership_get(user=user, group_id=group_id)
    conversation = membership.conversation
    members = selectors.group_members(conversation=conversation)
    # The one-to-one row may be missing for groups made before the groups app: render it empty.
    return GroupDetail(conversation, getattr(conversation, "group", None), members, membership.role)


class GroupApi(APIView):
    parser_classes = (BoundedJSONParser,)


class GroupListApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_list",
        responses={200: GroupListOutput, **_errors(401, 403)},
        summary="The caller's groups, most recent activity first, with unread counts",
    )
    def get(self, request: Request) -> Response:
        """Called to show the group list. Reading it marks nothing as read."""
        summaries = selectors.group_list_for_user(user=request.user)
        return Response(GroupListOutput({"results": summaries}).data)

    @extend_schema(
        tags=TAGS,
        operation_id="groups_create",
        request=GroupCreateInput,
        responses={201: GroupDetailOutput, **_errors(400, 401, 403, 404, 413, 415)},
        summary="Create a group; the caller is its owner (404 if a member id names no chat user)",
    )
    def post(self, request: Request) -> Response:
        """Called to create a group with its first members; they hear of it live."""
        data = _validated(GroupCreateInput, request.data)
        conversation = services.group_create(user=request.user, **data)
        detail = _detail(request.user, conversation.public_id)
        return Response(GroupDetailOutput(detail).data, status=201)


class GroupDetailApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_retrieve",
        parameters=[GROUP_ID],
        responses={200: GroupDetailOutput, **_errors(401, 403, 404)},
        summary="A group with its current members and the caller's role",
    )
    def get(self, request: Request, group_id: str) -> Response:
        """Called to open a group's details."""
        return Response(GroupDetailOutput(_detail(request.user, group_id)).data)

    @extend_schema(
        tags=TAGS,
        operation_id="groups_partial_update",
        parameters=[GROUP_ID],
        request=GroupUpdateInput,
        responses={200: GroupDetailOutput, **_errors(400, 401, 403, 404, 413, 415)},
        summary="Rename a group or change its description or avatar (admins)",
    )
    def patch(self, request: Request, group_id: str) -> Response:
        """Called when an admin edits the group; a rename is recorded in the history."""
        data = _validated(GroupUpdateInput, request.data)
        services.group_update(user=request.user, group_id=group_id, **data)
        return Response(GroupDetailOutput(_detail(request.user, group_id)).data)

    @extend_schema(
        tags=TAGS,
        operation_id="groups_destroy",
        parameters=[GROUP_ID],
        responses={204: None, **_errors(401, 403, 404)},
        summary="Delete a group and its history (admins)",
    )
    def delete(self, request: Request, group_id: str) -> Response:
        """Called when an admin deletes the group; every member hears of it live."""
        services.group_delete(user=request.user, group_id=group_id)
        return Response(status=204)


class GroupMemberListApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_members_list",
        parameters=[GROUP_ID],
        responses={200: GroupMemberListOutput, **_errors(401, 403, 404)},
        summary="A group's current members in order of joining",
    )
    def get(self, request: Request, group_id: str) -> Response:
        """Called to show who is in the group."""
        membership = selectors.group_membership_get(user=request.user, group_id=group_id)
        members = selectors.group_members(conversation=membership.conversation)
        return Response(GroupMemberListOutput({"results": members}).data)

    @extend_schema(
        tags=TAGS,
        operation_id="groups_members_create",
        parameters=[GROUP_ID],
        request=UserIdInput,
        responses={201: GroupMemberOutput, **_errors(400, 401, 403, 404, 409, 413, 415)},
        summary="Add a user to a group (admins; 409 if already in it or the group is full)",
    )
    def post(self, request: Request, group_id: str) -> Response:
        """Called when an admin adds someone; a former member rejoins."""
        data = _validated(UserIdInput, request.data)
        added = services.group_member_add(user=request.user, group_id=group_id, member_id=data["user_id"])
        return Response(GroupMemberOutput(added).data, status=201)


class GroupMemberApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_members_destroy",
        parameters=[GROUP_ID, USER_ID],
        responses={204: None, **_errors(400, 401, 403, 404)},
        summary="Remove (kick) a member (admins; never the owner, never oneself: leave instead)",
    )
    def delete(self, request: Request, group_id: str, user_id: str) -> Response:
        """Called when an admin removes someone; they keep the history up to that moment."""
        services.group_member_remove(user=request.user, group_id=group_id, member_id=user_id)
        return Response(status=204)


class GroupAdminListApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_admins_create",
        parameters=[GROUP_ID],
        request=UserIdInput,
        responses={200: GroupMemberOutput, **_errors(400, 401, 403, 404, 409, 413, 415)},
        summary="Make a member an admin (admins; 409 if they already are)",
    )
    def post(self, request: Request, group_id: str) -> Response:
        """Called when an admin promotes a member."""
        data = _validated(UserIdInput, request.data)
        member = services.group_admin_change(
            user=request.user, group_id=group_id, member_id=data["user_id"], make_admin=True
        )
        return Response(GroupMemberOutput(member).data)


class GroupAdminHandoverApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_admins_handover",
        parameters=[GROUP_ID],
        request=UserIdInput,
        responses={200: GroupMemberOutput, **_errors(400, 401, 403, 404, 413, 415)},
        summary="Hand one's admin rights (and ownership, if the owner) to a member and step down",
    )
    def post(self, request: Request, group_id: str) -> Response:
        """Called when an admin wants to leave the admin role to someone else (before leaving)."""
        data = _validated(UserIdInput, request.data)
        member = services.group_admin_change(
            user=request.user, group_id=group_id, member_id=data["user_id"], hand_over=True
        )
        return Response(GroupMemberOutput(member).data)


class GroupAdminApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_admins_destroy",
        parameters=[GROUP_ID, USER_ID],
        responses={204: None, **_errors(401, 403, 404, 409)},
        summary="Take a member's admin role away (admins; never the owner's)",
    )
    def delete(self, request: Request, group_id: str, user_id: str) -> Response:
        """Called when an admin demotes another admin (or themselves) to member."""
        services.group_admin_change(user=request.user, group_id=group_id, member_id=user_id, make_admin=False)
        return Response(status=204)


class GroupLeaveApi(GroupApi):
    @extend_schema(
        tags=TAGS,
        operation_id="groups_leave",
        parameters=[GROUP_ID],
        request=EmptyInput,
        responses={204: None, **_errors(400, 401, 403, 404, 409, 413, 415)},
        summary="Leave a group (409 `last_admin` while others remain: hand over first)",
    )
    def post(self, request: Request, group_id: str) -> Response:
        """Called when a member leaves; they keep the history up to that moment."""
        _validated(EmptyInput, request.data)
        services.group_leave(user=request.user, group_id=group_id)
        return Response(status=204)
