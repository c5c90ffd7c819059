"""REST answers an expired access token with token_expired, as docs/protocol.md promises, and
anything else wrong with authentication_failed."""

import datetime

from rest_framework_simplejwt.tokens import AccessToken

from accounts.tokens import access_decode


def _expired(chat_user) -> str:
    token = AccessToken(chat_user.access)
    token.set_exp(lifetime=-datetime.timedelta(seconds=5))
    return str(token)


def test_an_expired_access_token_is_token_expired(client_for, make_user):
    alice = make_user("Alice")
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_expired(alice)}")
    assert access_decode(_expired(alice), allow_expired=True).user_id == alice.id  # only the time is wrong
    response = client.get("/api/users/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_a_forged_token_is_authentication_failed(client_for, make_user):
    alice = make_user("Alice")
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.access[:-4]}AAAA")
    response = client.get("/api/users/me")
    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")
