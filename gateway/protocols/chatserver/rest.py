"""CHAT SERVER's REST endpoints (spec §3.2): /user and /room for a tenant's backend, and the
dashboard's /auth and /app (at the end of this module, with their own credential: dashboard.py).

Every route requires the app's secret, `Authorization: AppKey <app id>:<secret>` (the tenant
API's credential, tenants.authentication): in the original they were open and the app's UUID was
the only "secret" (spec §8.2). The `appId` a body or header still carries is checked against the
authenticated app; a different one is answered "App Not Found".

Status codes (spec §3.1): where the original *returned* an error object, the answer is still
200 with `{"status", "message"}` (clients read that body); where it answered Express's HTML 404
(validation errors), the answer is the project's error shape with its proper status (400, 401).
Users in `users` arrays are the tenant's ids (numbers or strings). No token is ever in a body.
"""

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, tenancy
from accounts.http import BoundedJSONParser
from accounts.identity import APPS, REGISTERED_TOKEN, Policy, Presented, identity_resolve
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.timefmt import iso_ms
from tenants import rooms
from tenants.apis import AppThrottle
from tenants.authentication import AppKeyAuthentication, IsApp
from tenants.services import tenant_user_register

from . import dashboard
from .wire import app_row, room_payload, room_row, split_name, user_of

TAGS = ["chatserver"]
APP_NOT_FOUND = {"status": 404, "message": "App Not Found"}
USER_NOT_FOUND = "ChatUser Not Found"
# Errors the original returned in a 200 body, by code: (status in the body, HTTP status).
RETURNED = {ErrorCode.NOT_FOUND: (404, 200), ErrorCode.CONFLICT: (400, 200)}


class ChatServerApi(APIView):
    authentication_classes = (AppKeyAuthentication,)
    permission_classes = (IsApp,)
    throttle_classes = (AppThrottle,)
    parser_classes = (BoundedJSONParser,)


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ApplicationError(ErrorCode.INVALID, "The body must be a JSON object.")
    return request.data


def _other_app(request: Request, app_id: object) -> bool:
    """A body, header or path names an app other than the authenticated one."""
    return app_id is not None and app_id != request.auth.public_id


def _returned(run: Callable[[], Response], *, http_status: int | None = None) -> Response:
    """Run a view body; not-found and conflict become the original's 200 `{status, message}`
    (or `http_status` where the original sent a real status), anything else the project's
    error shape. "Users 3,4 not registered" was returned too."""
    try:
        return run()
    except ApplicationError as error:
        if error.code in RETURNED or error.message.endswith("not registered"):
            body_status, status = RETURNED.get(error.code, (400, 200))
            return Response({"status": body_status, "message": error.message}, status=http_status or status)
        raise


class UserApi(ChatServerApi):
    @extend_schema(tags=TAGS, request=None, responses=None, summary="Register or update a user and its token")
    def post(self, request: Request) -> Response:
        data = _body(request)
        if _other_app(request, data.get("appId")):
            return Response(APP_NOT_FOUND)

        def run() -> Response:
            user, _created = tenant_user_register(
                app=request.auth,
                external_id=rooms.app_user_id_text(data.get("appUserId")),
                first_name=data.get("firstName"),
                last_name=data.get("lastName", ""),
                token=data.get("token"),
            )
            return Response(user_of(user))

        return _returned(run)


class UserPathApi(ChatServerApi):
    """`/user/{key}`: GET lists the app's users (key = the app id), DELETE deletes one user
    (key = the user's id, header `appId`), as the original's two routes on one path."""

    @extend_schema(tags=TAGS, request=None, responses=None, summary="The app's users (no tokens)")
    def get(self, request: Request, key: str) -> Response:
        if _other_app(request, key):
            return Response(APP_NOT_FOUND, status=404)
        return Response([user_of(u) for u in rooms.app_user_list(app=request.auth)])

    @extend_schema(tags=TAGS, request=None, responses=None, summary="Delete a user (soft; tokens revoked)")
    def delete(self, request: Request, key: str) -> Response:
        if _other_app(request, request.headers.get("appId")):
            return Response(APP_NOT_FOUND)

        def run() -> Response:
            try:
                user = tenancy.external_user_deactivate(app=request.auth, user_id=key)
            except ApplicationError as error:
                if error.code == ErrorCode.NOT_FOUND:  # the original's text
                    raise ApplicationError(ErrorCode.NOT_FOUND, USER_NOT_FOUND) from None
                raise
            return Response({**user_of(user), "deletedAt": iso_ms(user.updated_at)})

        return _returned(run)


class RoomApi(ChatServerApi):
    @extend_schema(tags=TAGS, request=None, responses=None, summary="Create a room")
    def post(self, request: Request) -> Response:
        data = _body(request)
        if _other_app(request, data.get("appId")):
            return Response(APP_NOT_FOUND)

        def run() -> Response:
            room, members = rooms.app_room_create_for_members(
                app=request.auth, name=data.get("room"), user_ids=data.get("users"), extra=data.get("extra")
            )
            return Response(room_payload(room, members))

        return _returned(run)

    @extend_schema(tags=TAGS, request=None, responses=None, summary="The app's rooms (without users)")
    def get(self, request: Request) -> Response:
        if _other_app(request, request.headers.get("appId")):
            return Response(APP_NOT_FOUND)
        return Response([room_row(r) for r in rooms.app_room_list(app=request.auth)])


class MyRoomApi(ChatServerApi):
    @extend_schema(tags=TAGS, request=None, responses=None, summary="Rooms of the user a token names")
    def get(self, request: Request) -> Response:
        policy = Policy(realm=APPS, forms=(REGISTERED_TOKEN,), apps=(request.auth.public_id,))
        try:
            identity = identity_resolve(
                policy=policy, presented=Presented(token=request.headers.get("token"))
            )
        except ApplicationError:
            return Response({"status": 404, "message": "ChatUser Not Found"})
        found = rooms.app_rooms_of_user(user=identity.user)
        return Response([room_payload(r, rooms.app_room_members(room=r)) for r in found[:100]])


class CheckRoomApi(ChatServerApi):
    @extend_schema(
        tags=TAGS, request=None, responses=None, summary="The room whose members are exactly these"
    )
    def post(self, request: Request) -> Response:
        data = _body(request)
        if _other_app(request, data.get("appId")):
            return Response(APP_NOT_FOUND)

        def run() -> Response:
            room = rooms.app_room_check(app=request.auth, user_ids=data.get("users"))
            return Response(room_payload(room, rooms.app_room_members(room=room)))

        return _returned(run, http_status=404)


class RoomDetailApi(ChatServerApi):
    @extend_schema(tags=TAGS, request=None, responses=None, summary="A room with its users")
    def get(self, request: Request, name: str) -> Response:
        if _other_app(request, request.headers.get("appId")):
            return Response(APP_NOT_FOUND, status=404)

        def run() -> Response:
            room = rooms.app_room_get(app=request.auth, name=name)
            return Response(room_payload(room, rooms.app_room_members(room=room)))

        return _returned(run, http_status=404)

    @extend_schema(tags=TAGS, request=None, responses=None, summary="Delete a room and its history")
    def delete(self, request: Request, name: str) -> Response:
        if _other_app(request, request.headers.get("appId")):
            return Response(APP_NOT_FOUND)

        def run() -> Response:
            deleted = rooms.app_room_delete(app=request.auth, name=name)
            return Response({"room": deleted, "message": "deleted"})

        return _returned(run)


class RoomMembersApi(ChatServerApi):
    change: Callable[..., Any] = staticmethod(rooms.app_room_members_add)

    @extend_schema(tags=TAGS, request=None, responses=None, summary="Add or remove room members")
    def put(self, request: Request) -> Response:
        data = _body(request)
        if _other_app(request, data.get("appId")):
            return Response(APP_NOT_FOUND, status=404)

        def run() -> Response:
            type(self).change(app=request.auth, name=data.get("room"), user_ids=data.get("users"))
            return Response({"message": "updated"})

        return _returned(run)


class RoomRemoveApi(RoomMembersApi):
    change = staticmethod(rooms.app_room_members_remove)


# --- the dashboard (spec §3.2 auth and app) ------------------------------------------------------

INVALID_LOGIN = {"name": "InvalidLogin", "message": "Login failed"}


def _fields(request: Request, allowed: set[str]) -> dict[str, Any]:
    """The JSON object body, refusing keys outside `allowed` (the original's tsoa refused extras
    with an HTML 404; here a 400 naming them). `token` may always be there (the credential)."""
    data = _body(request)
    extra = sorted(set(data) - allowed - {"token"})
    if extra:
        raise ApplicationError(ErrorCode.INVALID, f"Unknown fields: {', '.join(extra)}.", {"fields": extra})
    return data


def _session(user: Any, token: str) -> dict[str, Any]:
    first, last = split_name(user.display_name)
    return {"token": token, "firstName": first, "lastName": last, "email": user.email}


class DashboardOpenApi(APIView):
    """No credential; served only when the dashboard's secret is configured."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    parser_classes = (BoundedJSONParser,)


class DashboardApi(APIView):
    authentication_classes = (dashboard.DashboardAuthentication,)
    permission_classes = (dashboard.HasScope,)
    parser_classes = (BoundedJSONParser,)
    scopes: tuple[str, ...] = (dashboard.ADMIN, dashboard.USER)


class LoginApi(DashboardOpenApi):
    @extend_schema(tags=TAGS, request=None, responses=None, summary="Dashboard login")
    def post(self, request: Request) -> Response:
        key = dashboard.secret_or_unavailable()
        data = _fields(request, {"email", "password"})
        try:
            user = tenancy.app_owner_authenticate(email=data.get("email"), password=data.get("password"))
        except ApplicationError as error:
            if error.code == ErrorCode.AUTHENTICATION_FAILED:
                return Response(INVALID_LOGIN, status=401)
            raise
        return Response(_session(user, dashboard.token_issue(user=user, key=key)))


class RegisterApi(DashboardApi):
    scopes = (dashboard.ADMIN,)

    @extend_schema(tags=TAGS, request=None, responses=None, summary="Register a dashboard user (admin)")
    def post(self, request: Request) -> Response:
        data = _fields(request, {"firstName", "middleName", "lastName", "email", "password"})
        try:
            user = tenancy.app_owner_register(
                by=request.user,
                email=data.get("email"),
                password=data.get("password"),
                first_name=data.get("firstName"),
                middle_name=data.get("middleName", ""),
                last_name=data.get("lastName"),
            )
        except ApplicationError as error:
            if error.code == ErrorCode.CONFLICT:
                return Response({"status": 400, "message": "ChatUser Already Exists"})
            raise
        token = dashboard.token_issue(user=user, key=dashboard.secret_or_unavailable())
        return Response(
            {**_session(user, token), "firstName": data["firstName"], "lastName": data["lastName"]}
        )


class VerifyApi(DashboardOpenApi):
    @extend_schema(tags=TAGS, request=None, responses=None, summary="Is header `token` a dashboard token")
    def get(self, request: Request) -> Response:
        key = dashboard.secret_or_unavailable()
        return Response(dashboard.token_user(request.headers.get("token"), key=key) is not None)


class AppApi(DashboardApi):
    @extend_schema(tags=TAGS, request=None, responses=None, summary="Create an app (its secret shown once)")
    def post(self, request: Request) -> Response:
        data = _fields(request, {"name"})
        app = tenancy.app_create(name=data.get("name"), owner=request.user)
        return Response(app_row(app, secret=app.secret_1))

    @extend_schema(tags=TAGS, request=None, responses=None, summary="The caller's own apps")
    def get(self, request: Request) -> Response:
        return Response([app_row(a) for a in selectors.apps_owned_by(owner=request.user)])


class AppDetailApi(DashboardApi):
    @extend_schema(
        tags=TAGS, request=None, responses=None, summary="Delete an app (soft; its users disconnected)"
    )
    def delete(self, request: Request, app_id: str) -> Response:
        try:
            app = tenancy.app_deactivate(by=request.user, app_id=app_id)
        except ApplicationError as error:
            if error.code == ErrorCode.NOT_FOUND:
                return Response(APP_NOT_FOUND)
            raise
        return Response(app_row(app))
