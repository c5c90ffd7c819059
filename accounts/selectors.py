"""Reads of the accounts app. Plain data or querysets; nothing here writes."""

from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from .models import User


def user_get_by_public_id(*, public_id: object) -> User | None:
    """Any user, whatever their state; None for an unknown or malformed id."""
    if not is_public_id(public_id):
        return None
    return User.objects.filter(public_id=public_id).first()


def user_get_by_email(*, email: str) -> User | None:
    """Any user with this address (compared lower-cased, as stored)."""
    return User.objects.filter(email=User.objects.normalize_email(email)).first()


def users_visible() -> QuerySet[User]:
    """Users other people may find and look at: verified, active, not banned."""
    return User.objects.filter(email_verified=True, is_active=True, is_banned=False)


def user_get_visible(*, public_id: object, viewer: User) -> User:
    """A user the viewer may look at (themselves always); not_found otherwise."""
    if is_public_id(public_id) and public_id == viewer.public_id:
        return viewer
    user = users_visible().filter(public_id=public_id).first() if is_public_id(public_id) else None
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
    matches = Q(display_name__icontains=query) | Q(email=User.objects.normalize_email(query))
    return list(users_visible().filter(matches).order_by("display_name", "public_id")[:bound])


def users_presence_fields(*, public_ids: list[str]) -> dict[str, tuple[bool, datetime | None]]:
    """public id -> (presence_hidden, last_seen_at) for existing users, in one query."""
    rows = User.objects.filter(public_id__in=public_ids).values_list(
        "public_id", "presence_hidden", "last_seen_at"
    )
    return {public_id: (hidden, seen) for public_id, hidden, seen in rows}
