"""Reads of the accounts app. Plain data or querysets; nothing here writes."""

from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from .models import App, User


def user_get_by_public_id(*, public_id: object) -> User | None:
    """Any user, whatever their state; None for an unknown or malformed id."""
    if not is_public_id(public_id):
        return None
    return User.objects.filter(public_id=public_id).first()


def user_get_by_email(*, email: str) -> User | None:
    """Any user with this address (compared lower-cased, as stored)."""
    return User.objects.filter(email=User.objects.normalize_email(email)).first()


def users_in_realm(*, of: User) -> QuerySet[User]:
    """Every user of the realm `of` belongs to: the first-party realm (no app) or one tenant
    app. The one place realms are told apart: whatever names another user by id (chat
    partners, group members, search, profiles) starts here, so no id reaches across realms."""
    if of.app_id is None:
        return User.objects.filter(app__isnull=True)
    return User.objects.filter(app_id=of.app_id)


def users_visible(*, viewer: User) -> QuerySet[User]:
    """Users of the viewer's realm they may find and look at: verified (first-party: the
    email; a tenant's users: by the tenant), active, not banned."""
    verified = Q(email_verified=True) | Q(app__isnull=False)
    return users_in_realm(of=viewer).filter(verified, is_active=True, is_banned=False)


def user_get_visible(*, public_id: object, viewer: User) -> User:
    """A user of the viewer's realm the viewer may look at (themselves always); not_found
    otherwise."""
    if is_public_id(public_id) and public_id == viewer.public_id:
        return viewer
    users = users_visible(viewer=viewer)
    user = users.filter(public_id=public_id).first() if is_public_id(public_id) else None
    if user is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, "No such user.")
    return user


def user_email_visible(*, user: User, viewer: User | None) -> bool:
    """Emails are private to their owner unless CHAT SEARCH_EXPOSE_EMAILS is on."""
    return (viewer is not None and viewer.pk == user.pk) or settings.CHAT["SEARCH_EXPOSE_EMAILS"]


def user_search(*, viewer: User, query: str, limit: int | None = None) -> list[User]:
    """Plain-text search (never a pattern): case-insensitive substring of the display name, or
    exactly the email. Visible users only, bounded by CHAT SEARCH_MAX_RESULTS. The viewer is
    not excluded (ExpressChat clients expect to find themselves)."""
    limits = settings.CHAT
    query = " ".join(query.split())
    if len(query) < limits["SEARCH_MIN_LENGTH"] or len(query) > 254:
        return []
    bound = (
        limits["SEARCH_MAX_RESULTS"] if limit is None else max(0, min(limit, limits["SEARCH_MAX_RESULTS"]))
    )
    matches = Q(display_name__icontains=query)
    if viewer.app_id is None:
        matches |= Q(email=User.objects.normalize_email(query))
    else:  # a tenant's users are also found by the tenant's own id for them
        matches |= Q(external_id=query)
    return list(users_visible(viewer=viewer).filter(matches).order_by("display_name", "public_id")[:bound])


def users_presence_fields(*, public_ids: list[str]) -> dict[str, tuple[bool, datetime | None]]:
    """public id -> (presence_hidden, last_seen_at) for existing users, in one query."""
    rows = User.objects.filter(public_id__in=public_ids).values_list(
        "public_id", "presence_hidden", "last_seen_at"
    )
    return {public_id: (hidden, seen) for public_id, hidden, seen in rows}


def apps_owned_by(*, owner: User) -> QuerySet[App]:
    """The active apps a dashboard user owns, newest first (at most 1000: a dashboard list)."""
    return (
        App.objects.filter(owner=owner, is_active=True)
        .select_related("owner")
        .order_by("-created_at", "-pk")[:1000]
    )
