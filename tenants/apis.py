"""The tenant server API (/api/tenant/v1/...): what a tenant backend calls with its app secret
(`Authorization: AppKey <app id>:<secret>`), never a browser. Each view takes the app from the
credentials, calls one service scoped to that app, and renders the result; errors have the
project's shape {"code", "message", "extra"}. Users are named by the app's own ids."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts import tenancy
from accounts.http import BoundedJSONParser
from accounts.models import User
from chatproject.core.api import error_responses as _errors
from chatproject.core.errors import ApplicationError, ErrorCode

from . import services
from .authentication import AppKeyAuthentication, IsApp
from .serializers import (
    ConversationCreateInput,
    ConversationOutput,
    HandleOutput,
    RevokedOutput,
    SystemMessageInput,
    SystemMessageOutput,
    TokenRegisterInput,
    UserOutput,
    UserUpsertInput,
)

TAGS = ["tenant"]
USER_ID = OpenApiParameter("external_id", str, OpenApiParameter.PATH, description="The app's id for the user")


class AppThrottle(SimpleRateThrottle):
    """Per app, whatever address its backend calls from (settings THROTTLE_TENANT_API)."""

    scope = "tenant_api"

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # read per request, like the other throttles
        return api_settings.DEFAULT_THROTTLE_RATES

    def get_cache_key(self, request, view) -> str | None:
        app = request.auth
        return self.cache_format % {"scope": self.scope, "ident": app.public_id} if app is not None else None


class TenantApi(APIView):
    authentication_classes = (AppKeyAuthentication,)
    permission_classes = (IsApp,)
    throttle_classes = (AppThrottle,)
    parser_classes = (BoundedJSONParser,)


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ApplicationError(ErrorCode.INVALID, "The body must be a JSON object.")
    return request.data


def _user(user: User, created: bool = False) -> dict[str, Any]:
    return {
        "id": user.external_id,
        "user_id": user.public_id,
        "name": user.display_name,
        "avatar_url": user.avatar_url,
        "created": created,
    }


def _handle(handle, secret: str | None = None) -> dict[str, Any]:
    data = {
        "handle_id": handle.public_id,
        "user_id": handle.user.external_id,
        "revoked_at": handle.revoked_at,
    }
    if secret is not None:
        data["handle"] = secret
    return data


class UserUpsertApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        request=UserUpsertInput,
        responses={200: UserOutput, 201: UserOutput, **_errors(400, 401, 429)},
        summary="Create one of the app's users, or update their name and avatar",
    )
    def post(self, request: Request) -> Response:
        data = _body(request)
        user, created = tenancy.external_user_upsert(
            app=request.auth,
            external_id=data.get("id"),
            name=data.get("name"),
            avatar_url=data.get("avatar_url"),
        )
        return Response(_user(user, created), status=201 if created else 200)


class TokenRegisterApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        parameters=[USER_ID],
        request=TokenRegisterInput,
        responses={200: UserOutput, **_errors(400, 401, 404, 409, 429)},
        summary="Register (or replace) the user's opaque token (seed 003's POST /user)",
    )
    def post(self, request: Request, external_id: str) -> Response:
        user = tenancy.registered_token_set(
            app=request.auth, external_id=external_id, token=_body(request).get("token")
        )
        return Response(_user(user))


class HandleIssueApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        parameters=[USER_ID],
        request=None,
        responses={201: HandleOutput, **_errors(401, 404, 429)},
        summary="Issue an id handle for the user (the credential is in the answer, once)",
    )
    def post(self, request: Request, external_id: str) -> Response:
        issued = tenancy.id_handle_issue(app=request.auth, external_id=external_id)
        return Response(_handle(issued.handle, issued.secret), status=201)


class HandleRevokeApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter("handle_id", str, OpenApiParameter.PATH)],
        responses={200: HandleOutput, **_errors(401, 404, 429)},
        summary="Revoke an id handle; connections opened with it are closed",
    )
    def delete(self, request: Request, handle_id: str) -> Response:
        return Response(_handle(tenancy.id_handle_revoke(app=request.auth, handle_id=handle_id)))


class UserTokensRevokeApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        parameters=[USER_ID],
        request=None,
        responses={200: RevokedOutput, **_errors(401, 404, 429)},
        summary="Refuse the user's credentials issued before now; their live connections close",
    )
    def post(self, request: Request, external_id: str) -> Response:
        user = tenancy.user_tokens_revoke(app=request.auth, external_id=external_id)
        user.refresh_from_db(fields=["tokens_revoked_before"])
        return Response({"revoked_before": user.tokens_revoked_before})


class AppTokensRevokeApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={200: RevokedOutput, **_errors(401, 429)},
        summary="Refuse every credential of the app's users issued before now; all their connections close",
    )
    def post(self, request: Request) -> Response:
        tenancy.app_tokens_revoke(app=request.auth)
        request.auth.refresh_from_db(fields=["tokens_revoked_before"])
        return Response({"revoked_before": request.auth.tokens_revoked_before})


class ConversationCreateApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        request=ConversationCreateInput,
        responses={200: ConversationOutput, 201: ConversationOutput, **_errors(400, 401, 404, 429)},
        summary="Create a direct conversation (or find the existing one) or a group among the app's users",
    )
    def post(self, request: Request) -> Response:
        data = _body(request)
        conversation, created = services.tenant_conversation_create(
            app=request.auth,
            kind=data.get("kind"),
            member_ids=data.get("members"),
            title=data.get("title"),
            created_by=data.get("created_by"),
        )
        body = {"id": conversation.public_id, "kind": conversation.kind, "created": created}
        return Response(body, status=201 if created else 200)


class SystemMessageApi(TenantApi):
    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter("conversation_id", str, OpenApiParameter.PATH)],
        request=SystemMessageInput,
        responses={201: SystemMessageOutput, **_errors(400, 401, 404, 429)},
        summary="Post a system message in one of the app's conversations",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        message = services.tenant_system_message_post(
            app=request.auth, conversation_id=conversation_id, text=_body(request).get("text")
        )
        return Response({"id": message.public_id, "seq": message.seq}, status=201)
