"""A rotated refresh token presented again (after the grace for concurrent tabs) revokes its
whole login session (issue: hardening, item 4, refresh-token reuse detection)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import LoginSession
from accounts.services import REFRESH_REUSE_GRACE_SECONDS

pytestmark = pytest.mark.django_db


def _refresh(client, token):
    return client.post("/api/auth/refresh", {"refresh": token}, format="json")


def test_a_replayed_rotated_refresh_token_revokes_the_session(client_for, make_user, bus_sent):
    user = make_user("Alice")
    client = client_for()
    rotated = _refresh(client, user.refresh)
    assert rotated.status_code == 200
    fresh = rotated.json()["refresh"]
    # Long after the rotation, the old token comes back: a copy.
    BlacklistedToken.objects.update(
        blacklisted_at=timezone.now() - timedelta(seconds=REFRESH_REUSE_GRACE_SECONDS + 1)
    )
    replay = _refresh(client, user.refresh)
    assert (replay.status_code, replay.json()["code"]) == (401, "authentication_failed")
    assert LoginSession.objects.get(sid=user.sid).revoked_at is not None
    assert any(event["type"] == "session.revoked" and event["sid"] == user.sid for _groups, event in bus_sent)
    # The session's current refresh token dies with it.
    assert _refresh(client, fresh).status_code == 401


def test_two_tabs_refreshing_together_do_not_revoke_the_session(client_for, make_user):
    user = make_user("Alice")
    client = client_for()
    assert _refresh(client, user.refresh).status_code == 200
    again = _refresh(client, user.refresh)  # the slower tab, within the grace
    assert again.status_code == 401
    assert LoginSession.objects.get(sid=user.sid).revoked_at is None


def test_a_forged_refresh_token_revokes_nothing(client_for, make_user):
    user = make_user("Alice")
    client = client_for()
    assert _refresh(client, user.refresh[:-4] + "AAAA").status_code == 401
    assert LoginSession.objects.get(sid=user.sid).revoked_at is None
