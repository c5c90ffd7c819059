"""Native API routes of the groups app, included under /api/.

Group and user ids are matched as any path segment, not as the id pattern: a malformed id must
reach the access selector and get the API's own 404, not Django's HTML one.
"""

from django.urls import path

from . import apis

app_name = "groups"

urlpatterns = [
    path("groups/", apis.GroupListApi.as_view(), name="group-list"),
    path("groups/<str:group_id>/", apis.GroupDetailApi.as_view(), name="group-detail"),
    path("groups/<str:group_id>/members/", apis.GroupMemberListApi.as_view(), name="group-members"),
    path(
        "groups/<str:group_id>/members/<str:user_id>/",
        apis.GroupMemberApi.as_view(),
        name="group-member",
    ),
    path("groups/<str:group_id>/admins/", apis.GroupAdminListApi.as_view(), name="group-admins"),
    # Before the member pattern, which would otherwise take "handover" for a user id.
    path(
        "groups/<str:group_id>/admins/handover/",
        apis.GroupAdminHandoverApi.as_view(),
        name="group-admin-handover",
    ),
    path("groups/<str:group_id>/admins/<str:user_id>/", apis.GroupAdminApi.as_view(), name="group-admin"),
    path("groups/<str:group_id>/leave/", apis.GroupLeaveApi.as_view(), name="group-leave"),
]
