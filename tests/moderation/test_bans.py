"""Bans and unbans as moderation: staff with the permission, a reason, a record, and the ban's
own effects (sessions revoked, sockets told on commit)."""

import pytest

from accounts import bans
from accounts.models import LoginSession, ModerationAction, User
from chatproject.core.errors import ApplicationError, ErrorCode

from .conftest import staff_make

pytestmark = pytest.mark.django_db


def test_ban_revokes_sessions_tells_the_sockets_and_is_recorded(
    moderator, alice, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        bans.user_ban_as_moderator(moderator=moderator, user=alice.user, reason="  Spam links  ")
    banned = User.objects.get(pk=alice.user.pk)
    assert (banned.is_banned, banned.ban_reason) == (True, "Spam links")
    assert not LoginSession.objects.filter(user=banned, revoked_at__isnull=True).exists()
    assert [(groups, event["type"], event["reason"]) for groups, event in bus_sent] == [
        ([f"u.{alice.id}"], "session.revoked", "banned")
    ]
    record = ModerationAction.objects.get()
    assert (record.moderator, record.action, record.target_type, record.target_id) == (
        moderator,
        "user_ban",
        "user",
        alice.id,
    )
    assert (record.reason, record.extra) == ("Spam links", {"email": alice.user.email})


def test_unban_is_recorded_with_the_ban_it_lifted(moderator, alice):
    bans.user_ban_as_moderator(moderator=moderator, user=alice.user, reason="Spam")
    bans.user_unban_as_moderator(moderator=moderator, user=alice.user, reason="Appeal accepted")
    assert not User.objects.get(pk=alice.user.pk).is_banned
    record = ModerationAction.objects.latest("pk")
    assert (record.action, record.reason) == ("user_unban", "Appeal accepted")
    assert record.extra == {"email": alice.user.email, "ban_reason": "Spam"}


@pytest.mark.parametrize(
    "who", ["member", "staff without the permission", "staff banning itself", "staff banning a superuser"]
)
def test_refused_bans_change_nothing_and_record_nothing(who, alice, bob):
    staff = staff_make("s@example.com", "accounts.change_user")
    moderator, target = {
        "member": (bob.user, alice.user),
        "staff without the permission": (staff_make("v@example.com", "accounts.view_user"), alice.user),
        "staff banning itself": (staff, staff),
        "staff banning a superuser": (staff, staff_make("root@example.com", superuser=True)),
    }[who]
    with pytest.raises(ApplicationError) as caught:
        bans.user_ban_as_moderator(moderator=moderator, user=target, reason="Spam")
    assert caught.value.code == ErrorCode.PERMISSION_DENIED
    assert not User.objects.filter(is_banned=True).exists()
    assert not ModerationAction.objects.exists()


@pytest.mark.parametrize("reason", ["", " ", None])
def test_a_reason_is_required(moderator, alice, reason):
    for call in (bans.user_ban_as_moderator, bans.user_unban_as_moderator):
        with pytest.raises(ApplicationError) as caught:
            call(moderator=moderator, user=alice.user, reason=reason)
        assert caught.value.code == ErrorCode.INVALID
    assert not ModerationAction.objects.exists()


def test_banning_twice_or_unbanning_the_unbanned_is_a_conflict(moderator, alice):
    with pytest.raises(ApplicationError) as caught:
        bans.user_unban_as_moderator(moderator=moderator, user=alice.user, reason="Appeal")
    assert caught.value.code == ErrorCode.CONFLICT
    bans.user_ban_as_moderator(moderator=moderator, user=alice.user, reason="Spam")
    with pytest.raises(ApplicationError) as caught:
        bans.user_ban_as_moderator(moderator=moderator, user=alice.user, reason="Spam again")
    assert caught.value.code == ErrorCode.CONFLICT
    assert User.objects.get(pk=alice.user.pk).ban_reason == "Spam"
    assert ModerationAction.objects.count() == 1
