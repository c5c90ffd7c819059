"""Access tokens checked without PyJWT when they are exactly what this server issues
(accounts/tokens.py, `_hmac_payload`): the same verdict and the same claims as PyJWT for every
token, and anything unusual handed to PyJWT."""

import base64
import json
import time

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts import tokens
from accounts.tokens import access_decode
from chatproject.core.errors import ApplicationError, ErrorCode

NOW = int(time.time())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _token(
    payload: dict, *, key: str | None = None, algorithm: str = "HS256", headers: dict | None = None
) -> str:
    return jwt.encode(
        payload, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm, headers=headers
    )


def _claims(**changes) -> dict:
    claims = {"token_type": "access", "exp": NOW + 600, "iat": NOW - 5, "jti": "j1", "sub": "u1", "sid": "s1"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _pyjwt(token: str):
    """What access_decode answered with PyJWT alone: the claims, or the error code."""
    try:
        payload = jwt.decode(
            token,
            settings.SIMPLE_JWT["SIGNING_KEY"],
            algorithms=[settings.SIMPLE_JWT["ALGORITHM"]],
            options={"verify_exp": False, "require": ["exp", "sub"]},
        )
    except jwt.InvalidTokenError:
        return ErrorCode.AUTHENTICATION_FAILED
    return payload


def _ours(token: str):
    try:
        claims = access_decode(token, allow_expired=True)
    except ApplicationError as error:
        return error.code
    return (claims.user_id, claims.sid, claims.expires_at)


def _tampered_payload(token: str) -> str:
    header, _payload, signature = token.split(".")
    return ".".join([header, _b64(json.dumps(_claims(sub="someone-else")).encode()), signature])


def _alg_none(token: str) -> str:
    _header, payload, _signature = token.split(".")
    return ".".join([_b64(b'{"alg":"none","typ":"JWT"}'), payload, ""])


GOOD = _token(_claims())
CASES = {
    "issued": GOOD,
    "expired (allowed here)": _token(_claims(exp=NOW - 60)),
    "no iat": _token(_claims(iat=None)),
    "no jti": _token(_claims(jti=None)),
    "wrong key": _token(_claims(), key="another-key-of-enough-length-0123456789"),
    "tampered payload": _tampered_payload(GOOD),
    "signature of another token": ".".join(GOOD.split(".")[:2] + [_token(_claims(sub="u2")).split(".")[2]]),
    "alg none": _alg_none(GOOD),
    "HS512 where HS256 is configured": _token(_claims(), algorithm="HS512"),
    "a kid in the header": _token(_claims(), headers={"kid": "k1"}),
    "an audience": _token(_claims(aud="someone")),
    "not before in the future": _token(_claims(nbf=NOW + 3600)),
    "issued in the future": _token(_claims(iat=NOW + 3600)),
    "iat not a number": _token(_claims(iat="yesterday")),
    "sub not a string": _token(_claims(sub=42)),
    "no sub": _token(_claims(sub=None)),
    "no exp": _token(_claims(exp=None)),
    "a claim of its own": _token(_claims(extra=1)),
    "padding in a segment": GOOD.replace(".", "=.", 1),
    "junk in the signature": GOOD + "!",
    "two segments": ".".join(GOOD.split(".")[:2]),
    "four segments": GOOD + ".x",
    "not base64 json": "abc.def.ghi",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_verdict_and_the_claims_are_pyjwts(name):
    token = CASES[name]
    theirs = _pyjwt(token)
    ours = _ours(token)
    if (
        isinstance(theirs, dict)
        and theirs.get("token_type") == "access"
        and isinstance(theirs.get("sid"), str)
    ):
        assert ours == (theirs["sub"], theirs["sid"], theirs["exp"])
    else:
        assert ours == ErrorCode.AUTHENTICATION_FAILED


def test_what_this_server_issues_is_checked_without_pyjwt(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("PyJWT was called")

    issued = AccessToken()  # what accounts.tokens.access_token_for issues, without a user row
    issued["sub"], issued["sid"] = "u1", "s1"
    monkeypatch.setattr(tokens.jwt, "decode", refuse)
    assert _ours(str(issued)) == ("u1", "s1", issued["exp"])
    assert _ours(GOOD) == ("u1", "s1", NOW + 600)
    with pytest.raises(AssertionError):  # anything else still goes to PyJWT
        access_decode(CASES["an audience"])


@pytest.mark.parametrize("name", ["wrong key", "tampered payload", "alg none", "junk in the signature"])
def test_a_forged_token_is_refused(name):
    with pytest.raises(ApplicationError) as caught:
        access_decode(CASES[name])
    assert caught.value.code == ErrorCode.AUTHENTICATION_FAILED


def test_an_expired_token_is_refused_unless_allowed():
    expired = CASES["expired (allowed here)"]
    with pytest.raises(ApplicationError) as caught:
        access_decode(expired)
    assert caught.value.code == ErrorCode.TOKEN_EXPIRED
    assert access_decode(expired, allow_expired=True).user_id == "u1"


def test_a_refresh_token_is_not_an_access_token():
    with pytest.raises(ApplicationError) as caught:
        access_decode(_token(_claims(token_type="refresh")))
    assert caught.value.message == "Not an access token."
