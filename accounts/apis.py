"""Native REST API of the accounts app (/api/auth/..., /api/users/...).

Each view validates its input with a strict serializer, calls one service or selector and
renders the result. Errors are ApplicationErrors, rendered by chatproject.core.errors.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from chatproject.core.api import error_responses as _errors
from chatproject.core.api import validated
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.timefmt import iso_ms

from . import friends, selectors, services
from .http import AuthRateThrottle, BoundedJSONParser
from .models import User
from .serializers import (
    FriendInput,
    LoginInput,
    LoginOutput,
    RefreshInput,
    ResendInput,
    SearchQuery,
    SignupInput,
    TokenPairOutput,
    UserListOutput,
    UserOutput,
    UserSettingsInput,
    UserSettingsOutput,
    VerificationSentOutput,
    VerifyInput,
)


def _login_payload(login: services.Login) -> dict:
    user = UserOutput(login.user, context={"viewer": login.user}).data
    return {"access": login.tokens.access, "refresh": login.tokens.refresh, "user": user}


def _validated(serializer_class: type[Serializer], request: Request) -> dict:
    return validated(serializer_class, request.data)


def _sent_payload(sent: services.VerificationSent) -> dict:
    return {"email": sent.user.email, "code_expires_at": iso_ms(sent.expires_at)}


class PublicAuthApi(APIView):
    """Anonymous auth endpoints: no authentication (a stale Bearer header must not get in the
    way of logging in again), throttled per client address, JSON bodies only."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (AuthRateThrottle,)
    parser_classes = (BoundedJSONParser,)


class SignupApi(PublicAuthApi):
    throttle_scope = "auth_signup"

    @extend_schema(
        tags=["auth"],
        request=SignupInput,
        responses={202: VerificationSentOutput, **_errors(400, 403, 409, 413, 429)},
        summary="Sign up; a verification code and link are mailed",
    )
    def post(self, request: Request) -> Response:
        """Called to create an account (or renew the code of an unverified one)."""
        data = _validated(SignupInput, request)
        sent = services.user_register(**data)
        return Response(_sent_payload(sent), status=202)


class VerifyApi(PublicAuthApi):
    throttle_scope = "auth_verify"

    @extend_schema(
        tags=["auth"],
        request=VerifyInput,
        responses={200: LoginOutput, **_errors(400, 403, 413, 429)},
        summary="Verify the email with the mailed code; returns a token pair",
    )
    def post(self, request: Request) -> Response:
        """Called with the code from the verification mail."""
        data = _validated(VerifyInput, request)
        login = services.user_verify_email(email=data["email"], code=data["code"])
        return Response(_login_payload(login))


# What a resend for this address would reveal about it: answered like a sent code.
QUIET_RESEND_REFUSALS = {
    ErrorCode.NOT_FOUND,
    ErrorCode.ALREADY_VERIFIED,
    ErrorCode.COOLDOWN,
    ErrorCode.BANNED,
    ErrorCode.PERMISSION_DENIED,
}


class ResendApi(PublicAuthApi):
    throttle_scope = "auth_resend"

    @extend_schema(
        tags=["auth"],
        request=ResendInput,
        responses={202: VerificationSentOutput, **_errors(400, 413, 429)},
        summary="Mail a new verification code (the old one dies)",
        description=(
            "Every well-formed address gets the same 202 answer, whether or not it has an "
            "account waiting for verification, so the endpoint cannot tell which addresses are "
            "registered. A mail goes out only to an unverified account, at most once per "
            "resend cooldown; the answer does not say whether one did."
        ),
    )
    def post(self, request: Request) -> Response:
        """Called when the verification mail got lost or the code expired."""
        data = _validated(ResendInput, request)
        email = data["email"]
        try:
            sent = services.verification_resend(email=email)
        except ApplicationError as error:
            if error.code not in QUIET_RESEND_REFUSALS:
                raise
            expires = timezone.now() + timedelta(seconds=settings.CHAT["VERIFICATION_CODE_TTL_SECONDS"])
            payload = {"email": User.objects.normalize_email(email), "code_expires_at": iso_ms(expires)}
            return Response(payload, status=202)
        return Response(_sent_payload(sent), status=202)


class LoginApi(PublicAuthApi):
    throttle_scope = "auth_login"

    @extend_schema(
        tags=["auth"],
        request=LoginInput,
        responses={200: LoginOutput, **_errors(400, 401, 403, 413, 429)},
        summary="Log in with email and password; returns a token pair and the user",
    )
    def post(self, request: Request) -> Response:
        """Called with credentials; starts a new login session."""
        data = _validated(LoginInput, request)
        login = services.user_authenticate(email=data["email"], password=data["password"])
        return Response(_login_payload(login))


class RefreshApi(PublicAuthApi):
    throttle_scope = "auth_refresh"

    @extend_schema(
        tags=["auth"],
        request=RefreshInput,
        responses={200: TokenPairOutput, **_errors(400, 401, 403, 413)},
        summary="Rotate a refresh token (the old one stops working)",
    )
    def post(self, request: Request) -> Response:
        """Called when the access token expired."""
        data = _validated(RefreshInput, request)
        pair = services.session_refresh(refresh_token=data["refresh"])
        return Response({"access": pair.access, "refresh": pair.refresh})


class LogoutApi(APIView):
    parser_classes = (BoundedJSONParser,)
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=["auth"],
        request=RefreshInput,
        responses={204: None, **_errors(400, 401, 403, 413)},
        summary="End the login session of a refresh token; its sockets are closed",
    )
    def post(self, request: Request) -> Response:
        """Called to log out; the refresh token must belong to the caller."""
        data = _validated(RefreshInput, request)
        services.user_logout(refresh_token=data["refresh"], user=request.user)
        return Response(status=204)


class LogoutEverywhereApi(APIView):
    @extend_schema(
        tags=["auth"],
        request=None,
        responses={204: None, **_errors(401, 403)},
        summary="End every login session of the caller; all their sockets are closed",
    )
    def post(self, request: Request) -> Response:
        """Called to log out on every device."""
        services.user_logout_everywhere(user=request.user)
        return Response(status=204)


class MeApi(APIView):
    @extend_schema(tags=["users"], responses={200: UserOutput, **_errors(401, 403)}, summary="The caller")
    def get(self, request: Request) -> Response:
        """Called to read one's own profile (with email)."""
        return Response(UserOutput(request.user, context={"viewer": request.user}).data)


class UserSearchApi(APIView):
    @extend_schema(
        tags=["users"],
        parameters=[OpenApiParameter("q", str, required=True, description="Name substring or exact email")],
        responses={200: UserListOutput, **_errors(400, 401, 403)},
        summary="Search users by name (substring) or email (exact)",
    )
    def get(self, request: Request) -> Response:
        """Called to find people to chat with."""
        query = SearchQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        users = services.user_search(user=request.user, query=query.validated_data["q"])
        return Response({"results": UserOutput(users, many=True, context={"viewer": request.user}).data})


class UserDetailApi(APIView):
    @extend_schema(tags=["users"], responses={200: UserOutput, **_errors(401, 403, 404)}, summary="One user")
    def get(self, request: Request, public_id: str) -> Response:
        """Called to look a user up by id."""
        user = selectors.user_get_visible(public_id=public_id, viewer=request.user)
        return Response(UserOutput(user, context={"viewer": request.user}).data)


class UserSettingsApi(APIView):
    parser_classes = (BoundedJSONParser,)

    @extend_schema(
        tags=["users"], responses={200: UserSettingsOutput, **_errors(401, 403)}, summary="Privacy settings"
    )
    def get(self, request: Request) -> Response:
        """Called to read one's presence and receipt settings."""
        return Response(UserSettingsOutput(request.user).data)

    @extend_schema(
        tags=["users"],
        request=UserSettingsInput,
        responses={200: UserSettingsOutput, **_errors(400, 401, 403, 413)},
        summary="Change privacy settings (hide presence, turn read receipts off); applies to live sockets",
    )
    def patch(self, request: Request) -> Response:
        """Called to change one's settings; fields left out stay as they are."""
        data = _validated(UserSettingsInput, request)
        user = services.user_settings_update(user=request.user, **data)
        return Response(UserSettingsOutput(user).data)


class FriendsApi(APIView):
    parser_classes = (BoundedJSONParser,)

    @extend_schema(
        tags=["friends"], responses={200: UserListOutput, **_errors(401, 403)}, summary="Your friends"
    )
    def get(self, request: Request) -> Response:
        """Called to list one's friends, in the order they were added."""
        found = friends.friends_of(user=request.user)
        return Response({"results": UserOutput(found, many=True, context={"viewer": request.user}).data})

    @extend_schema(
        tags=["friends"],
        request=FriendInput,
        responses={201: UserOutput, 200: UserOutput, **_errors(400, 401, 403, 404, 409, 413)},
        summary="Befriend a user (both sides at once; 200 if already friends)",
    )
    def post(self, request: Request) -> Response:
        """Called to add a friend: the friendship is mutual at once; both users hear
        `friend.added`."""
        data = _validated(FriendInput, request)
        added = friends.friend_add(user=request.user, friend_id=data["user_id"])
        body = UserOutput(added.friend, context={"viewer": request.user}).data
        return Response(body, status=201 if added.created else 200)


class FriendDetailApi(APIView):
    @extend_schema(
        tags=["friends"], responses={204: None, **_errors(401, 403, 404)}, summary="End a friendship"
    )
    def delete(self, request: Request, public_id: str) -> Response:
        """Called to remove a friend (both sides); removing a non-friend is not an error."""
        friends.friend_remove(user=request.user, friend_id=public_id)
        return Response(status=204)
