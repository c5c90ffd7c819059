"""Native API routes of the messaging app, included under /api/.

Conversation ids are matched as any path segment, not as the id pattern: a malformed id must
reach the access selector and get the API's own 404, not Django's HTML one.
"""

from django.urls import path

from . import apis

app_name = "messaging"

urlpatterns = [
    path("chat-requests/", apis.ChatRequestListApi.as_view(), name="chat-request-list"),
    path("chat-requests/<str:request_id>/", apis.ChatRequestDetailApi.as_view(), name="chat-request-detail"),
    path(
        "chat-requests/<str:request_id>/accept/",
        apis.ChatRequestDecisionApi.as_view(decision="accept"),
        name="chat-request-accept",
    ),
    path(
        "chat-requests/<str:request_id>/decline/",
        apis.ChatRequestDecisionApi.as_view(decision="decline"),
        name="chat-request-decline",
    ),
    path("sync/", apis.SyncApi.as_view(), name="sync"),
    path("uploads/", apis.UploadApi.as_view(), name="uploads"),
    path("uploads/limits/", apis.UploadLimitsApi.as_view(), name="upload-limits"),
    path("uploads/<str:attachment_id>/", apis.UploadDetailApi.as_view(), name="upload-detail"),
    path("conversations/", apis.ConversationListApi.as_view(), name="conversation-list"),
    path("conversations/direct/", apis.DirectConversationApi.as_view(), name="conversation-direct"),
    path(
        "conversations/<str:conversation_id>/messages/",
        apis.MessageListApi.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<str:conversation_id>/leave/",
        apis.ConversationLeaveApi.as_view(),
        name="conversation-leave",
    ),
    path(
        "conversations/<str:conversation_id>/rejoin/",
        apis.ConversationRejoinApi.as_view(),
        name="conversation-rejoin",
    ),
    path(
        "conversations/<str:conversation_id>/read/",
        apis.ConversationReadApi.as_view(),
        name="conversation-read",
    ),
    path(
        "conversations/<str:conversation_id>/delivered/",
        apis.ConversationDeliveredApi.as_view(),
        name="conversation-delivered",
    ),
    path(
        "conversations/<str:conversation_id>/messages/<str:message_id>/seen-by/",
        apis.MessageSeenByApi.as_view(),
        name="message-seen-by",
    ),
    path(
        "conversations/<str:conversation_id>/messages/<str:message_id>/",
        apis.MessageDetailApi.as_view(),
        name="message-detail",
    ),
    path(
        "conversations/<str:conversation_id>/messages/<str:message_id>/edits/",
        apis.MessageEditListApi.as_view(),
        name="message-edits",
    ),
    path(
        "conversations/<str:conversation_id>/messages/<str:message_id>/reactions/",
        apis.MessageReactionApi.as_view(),
        name="message-reactions",
    ),
]
