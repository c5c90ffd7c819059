"""The private chat app's REST endpoints (spec §1.2), at the site root as the app calls them.

The app sends no credential but the id it was given: its id handle (`_id` of its sign-in), in
the path of `GET /user/:id` and as `userId` of search. A handle that resolves (in the mount's app,
not revoked) names the caller; anything else (a public id, a revoked handle, garbage) is nobody:
`GET /user/:id` answers 404 and search an empty list. Sign-in issues a fresh handle.

Status codes are exact, as the app checks them: sign-up 201, sign-in / profile / search 200 (any
other 2xx is a failure to the app), sign-in failure 401 with the original body. Other errors use
the project's `{"code", "message", "extra"}` shape (the app reads no error body).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import app_logins
from accounts.http import AuthRateThrottle, BoundedJSONParser
from accounts.identity import APPS, ID_HANDLE, Policy, Presented, identity_resolve
from accounts.models import App, User
from chatproject.core.errors import ApplicationError, ErrorCode
from gateway.registry import mounts, protocol

from . import selectors, wire

TAGS = ["privatechat"]
NAME = "privatechat"


def mount_app_id() -> str:
    """The one tenant app whose users this protocol serves: the `apps` of its mounts."""
    ids = {
        app_id
        for m in mounts()
        if protocol(m.protocol).name == NAME and m.policy.apps
        for app_id in m.policy.apps
    }
    if len(ids) != 1:
        raise ImproperlyConfigured('The privatechat mounts must name exactly one app ("apps": [<app id>]).')
    return ids.pop()


def _app() -> App:
    app = App.objects.filter(public_id=mount_app_id(), is_active=True).first()
    if app is None or not app.allows_protocol(NAME):
        raise ApplicationError(ErrorCode.NOT_FOUND, "This service is not available.")
    return app


def _caller(handle: object) -> User | None:
    """The user a handle names in the mount's app, or None."""
    if not isinstance(handle, str) or not handle:
        return None
    policy = Policy(realm=APPS, forms=(ID_HANDLE,), apps=(mount_app_id(),), protocol=NAME)
    try:
        return identity_resolve(policy=policy, presented=Presented(handle=handle)).user
    except ApplicationError:
        return None


class PrivateChatApi(APIView):
    authentication_classes = ()  # no credential in headers; no session, so no CSRF either
    permission_classes = (AllowAny,)
    parser_classes = (BoundedJSONParser, FormParser)  # the original took both


class WelcomeApi(PrivateChatApi):
    @extend_schema(tags=TAGS, responses=None, summary="The original's greeting")
    def get(self, request: Request) -> Response:
        """Called by nobody in the app; answered on the mount's own host or port, as the original
        answered `GET /` (elsewhere `/` stays the web client)."""
        return Response(wire.WELCOME)


class SignupApi(PrivateChatApi):
    throttle_classes = (AuthRateThrottle,)
    throttle_scope = "auth_signup"

    @extend_schema(tags=TAGS, request=None, responses=None, summary="Sign up with a username and password")
    def post(self, request: Request) -> Response:
        """Called by the Register screen: 201 with the new user (no password, no handle)."""
        data = request.data
        user = app_logins.app_user_register(
            app=_app(), username=data.get("username"), password=data.get("password")
        )
        return Response(wire.signed_up(user), status=201)


class SigninApi(PrivateChatApi):
    throttle_classes = (AuthRateThrottle,)
    throttle_scope = "auth_login"

    @extend_schema(
        tags=TAGS, request=None, responses=None, summary="Sign in: the profile, `_id` a new id handle"
    )
    def post(self, request: Request) -> Response:
        """Called by the Login screen: 200 with the profile, whose `_id` is a new id handle (the
        app's only credential from now on); 401 with the original body otherwise."""
        data = request.data
        try:
            issued = app_logins.app_user_login(
                app=_app(), username=data.get("username"), password=data.get("password")
            )
        except ApplicationError as error:
            if error.code == ErrorCode.AUTHENTICATION_FAILED:
                return Response(wire.WRONG_LOGIN, status=401)
            raise
        profile = selectors.profile(user=issued.handle.user)
        return Response(wire.profile(profile, handle=issued.secret))


class LookupApi(PrivateChatApi):
    """The two reads anyone may send (a handle is their only credential): throttled per client
    address, so they cannot be used to hammer the database or to guess handles at speed."""

    throttle_classes = (AuthRateThrottle,)
    throttle_scope = "privatechat_lookup"


class SearchApi(LookupApi):
    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("q", str),
            OpenApiParameter("userId", str, description="Your id handle"),
        ],
        responses=None,
        summary="Users whose name contains q (not you, not your friends); always an array",
    )
    def get(self, request: Request) -> Response:
        """Called by the AddFriend screen at each pause in typing."""
        viewer = _caller(request.query_params.get("userId"))
        text = request.query_params.get("q", "")
        if viewer is None or not isinstance(text, str) or len(text) > 100:
            return Response([])
        return Response([wire.user_ref(p) for p in selectors.user_search(viewer=viewer, text=text)])


class ProfileApi(LookupApi):
    @extend_schema(tags=TAGS, responses=None, summary="Your profile, by your id handle")
    def get(self, request: Request, user_id: str) -> Response:
        """Called by the ChatList screen at every start: the caller's own profile, `_id` the same
        handle. Nobody else's profile is served (a public id is not found)."""
        user = _caller(user_id)
        if user is None:
            return Response(wire.USER_NOT_FOUND, status=404)
        return Response(wire.profile(selectors.profile(user=user), handle=user_id))
