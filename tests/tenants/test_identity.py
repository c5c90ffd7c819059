"""The identity resolver (accounts.identity): every credential form, every refusal, nothing
stored on bad input."""

import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from accounts import tenancy
from accounts.identity import (
    ACCESS,
    APPS,
    ID_HANDLE,
    REGISTERED_TOKEN,
    TENANT_JWT,
    Policy,
    Presented,
    identity_check,
    identity_resolve,
)
from accounts.models import App, User
from accounts.verification import verification_check
from chatproject.core.errors import ApplicationError, ErrorCode

from .helpers import VerifyServer, sign

pytestmark = pytest.mark.django_db

TENANT = Policy(realm=APPS, forms=(TENANT_JWT, REGISTERED_TOKEN, ID_HANDLE), protocol="expresschat")


def resolve(token=None, *, handle=None, claimed=None, policy=TENANT):
    return identity_resolve(
        policy=policy, presented=Presented(token=token, handle=handle, claimed_id=claimed)
    )


def refused(token=None, code=ErrorCode.AUTHENTICATION_FAILED, **kwargs) -> str:
    with pytest.raises(ApplicationError) as info:
        resolve(token, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value.message


def test_a_valid_tenant_token_creates_the_user_on_first_sight(make_app):
    app = make_app()
    identity = resolve(sign(app, "b9", name="Bee Nine"))
    user = identity.user
    assert (user.app_id, user.external_id, user.display_name, user.email) == (app.pk, "b9", "Bee Nine", None)
    assert not user.has_usable_password()
    assert identity.realm == app.public_id
    assert identity.session_id.startswith("t:")
    assert resolve(sign(app, "b9")).user.pk == user.pk  # the same user the next time
    assert User.objects.filter(app=app).count() == 1


def test_either_secret_verifies_and_a_rotated_out_secret_does_not(make_app):
    app = make_app()
    old_1, old_2 = app.secret_1, app.secret_2
    assert resolve(sign(app, "u1", key=old_1)).user.external_id == "u1"
    assert resolve(sign(app, "u1", key=old_2)).user.external_id == "u1"
    slot, new = tenancy.app_key_rotate(app=app)
    assert slot == 1  # the older (both equally old: the first)
    assert resolve(sign(app, "u1", key=new)).user.external_id == "u1"
    assert resolve(sign(app, "u1", key=old_2)).user.external_id == "u1"  # still valid meanwhile
    assert refused(sign(app, "u1", key=old_1)) == "Invalid token signature."
    slot, _ = tenancy.app_key_rotate(app=app)
    assert slot == 2  # now secret 2 is the older
    assert refused(sign(app, "u1", key=old_2)) == "Invalid token signature."


@pytest.mark.parametrize("alg", ["none", "HS512", "HS384", "RS256"])
def test_only_hs256_is_accepted(make_app, alg):
    app = make_app()
    payload = {"sub": "u1", "app": app.public_id, "exp": int(time.time()) + 60}
    if alg == "none":
        token = jwt.encode(payload, None, algorithm="none")
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        token = jwt.encode(payload, pem, algorithm="RS256")
    else:
        token = jwt.encode(payload, app.secret_1, algorithm=alg)
    assert refused(token) == "Only HS256 tokens are accepted."
    assert not User.objects.filter(app=app).exists()


def test_expired_tokens_and_tokens_valid_too_long_are_refused(make_app, settings):
    app = make_app()
    refused(sign(app, "u1", exp_in=-5), ErrorCode.TOKEN_EXPIRED)
    settings.CHAT = {**settings.CHAT, "TENANT_TOKEN_MAX_TTL_SECONDS": 3600}
    assert "at most 3600 seconds" in refused(sign(app, "u1", exp_in=7200))
    token = jwt.encode({"sub": "u1", "app": app.public_id}, app.secret_1, algorithm="HS256")  # no exp
    assert refused(token) == "The token has no exp claim."
    assert refused(sign(app, "u1", iat=int(time.time()) + 3600)) == "iat must be a time in the past."
    assert not User.objects.filter(app=app).exists()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        "e30.e30.",
        "x" * 5000,
        "\u00e9.\u00e9.\u00e9",
    ],
)
def test_malformed_tokens_get_a_clear_error(make_app, token):
    make_app()
    with pytest.raises(ApplicationError) as info:
        resolve(token)
    assert info.value.code in (ErrorCode.AUTHENTICATION_FAILED, ErrorCode.NOT_AUTHENTICATED)
    assert not User.objects.filter(app__isnull=False).exists()


def test_unknown_and_inactive_apps_and_wrong_keys(make_app):
    app, other = make_app(), make_app("Other")
    assert refused(sign(app, "u1", key=other.secret_1)) == "Invalid token signature."
    forged = jwt.encode({"sub": "u1", "app": "0" * 24, "exp": int(time.time()) + 60}, "k", algorithm="HS256")
    assert refused(forged) == "Unknown app."
    forged = jwt.encode({"sub": "u1", "app": ["x"], "exp": int(time.time()) + 60}, "k", algorithm="HS256")
    assert refused(forged) == "Unknown app."
    App.objects.filter(pk=app.pk).update(is_active=False)
    assert refused(sign(app, "u1")) == "Unknown app."
    restricted = Policy(realm=APPS, forms=(TENANT_JWT,), apps=(other.public_id,))
    App.objects.filter(pk=app.pk).update(is_active=True)
    assert refused(sign(app, "u1"), policy=restricted) == "Unknown app."
    assert not User.objects.filter(app__isnull=False).exists()


@pytest.mark.parametrize("sub", ["", "a.b", "b" * 65, "white space", "\u00e9t\u00e9", 42, None])
def test_bad_external_ids_are_refused_and_nothing_is_stored(make_app, sub):
    app = make_app()
    token = jwt.encode(
        {"sub": sub, "app": app.public_id, "exp": int(time.time()) + 60}, app.secret_1, algorithm="HS256"
    )
    with pytest.raises(ApplicationError) as info:
        resolve(token)
    assert info.value.code == ErrorCode.AUTHENTICATION_FAILED
    assert not User.objects.filter(app=app).exists()


def test_oversized_tokens_and_claims_are_refused(make_app):
    app = make_app()
    assert refused(sign(app, "u1", padding="x" * 3000)) == "Token too large."
    assert "name must be" in refused(sign(app, "u1", name="n" * 101))
    assert not User.objects.filter(app=app).exists()


def test_iat_revocation_per_user_and_per_app(make_app):
    app = make_app()
    old = sign(app, "u1", iat=int(time.time()) - 10)
    no_iat = sign(app, "u1", iat=False)
    user = resolve(old).user
    assert resolve(no_iat).user == user  # no revocation yet: a token without iat is fine
    tenancy.user_tokens_revoke(app=app, external_id="u1")
    assert refused(old) == "Token revoked."
    assert refused(no_iat) == "Token revoked."  # cannot prove it came after
    later = int(time.time()) + 1
    assert resolve(sign(app, "u1", iat=later)).user == user
    other = resolve(sign(app, "u2", iat=int(time.time()) - 10)).user
    tenancy.app_tokens_revoke(app=app)
    assert refused(sign(app, "u2", iat=int(time.time()) - 10)) == "Token revoked."
    assert resolve(sign(app, "u2", iat=int(time.time()) + 1)).user == other


def test_a_claimed_id_must_be_the_resolved_user(make_app):
    app = make_app()
    token = sign(app, "u1")
    user = resolve(token, claimed="u1").user
    assert resolve(token, claimed=user.public_id).user == user
    assert refused(token, claimed="u2") == "The claimed user id is not the authenticated user."


def test_id_handles_resolve_within_their_app_until_revoked(make_app):
    app, other = make_app(), make_app("Other")
    tenancy.external_user_upsert(app=app, external_id="u1", name="U One")
    issued = tenancy.id_handle_issue(app=app, external_id="u1")
    assert len(issued.secret) >= 27  # 160 bits, URL-safe base64
    identity = resolve(handle=issued.secret)
    assert identity.user.external_id == "u1"
    assert identity.session_id == f"h:{issued.handle.public_id}"
    assert issued.handle.handle_hash != issued.secret and issued.secret not in issued.handle.handle_hash
    only_other = Policy(realm=APPS, forms=(ID_HANDLE,), apps=(other.public_id,))
    assert refused(handle=issued.secret, policy=only_other) == "Unknown or revoked handle."
    with pytest.raises(ApplicationError) as info:
        tenancy.id_handle_revoke(app=other, handle_id=issued.handle.public_id)  # another app's handle
    assert info.value.code == ErrorCode.NOT_FOUND
    assert identity_check(user=identity.user, session_id=identity.session_id) == identity.user
    tenancy.id_handle_revoke(app=app, handle_id=issued.handle.public_id)
    assert refused(handle=issued.secret) == "Unknown or revoked handle."
    with pytest.raises(ApplicationError):
        identity_check(user=identity.user, session_id=identity.session_id)
    assert refused(handle="short") == "Unknown or revoked handle."
    assert refused(handle="x" * 40) == "Unknown or revoked handle."


def test_registered_tokens_resolve_by_hash_and_are_replaced(make_app):
    app = make_app()
    tenancy.external_user_upsert(app=app, external_id="7", name="Seven")
    tenancy.registered_token_set(app=app, external_id="7", token="opaque-token-1")
    assert resolve("opaque-token-1").user.external_id == "7"
    tenancy.registered_token_set(app=app, external_id="7", token="opaque-token-2")
    assert refused("opaque-token-1") == "token key mismatch"
    assert resolve("opaque-token-2").user.external_id == "7"
    stored = app.registered_tokens.get()
    assert "opaque-token-2" not in stored.token_hash


def test_an_app_may_be_limited_to_some_protocols(make_app):
    app = make_app(allowed_protocols=["seed003"])
    message = refused(sign(app, "u1"), ErrorCode.PERMISSION_DENIED)
    assert message == "This app may not use this protocol."


def test_first_party_policy_takes_only_first_party_access_tokens(make_app, make_user):
    app = make_app()
    alice = make_user("Alice")
    first = Policy(forms=(ACCESS,))
    assert resolve(alice.access, policy=first).user == alice.user
    with pytest.raises(ApplicationError):
        resolve(sign(app, "u1"), policy=first)  # a tenant token is no first-party token
    with pytest.raises(ApplicationError):
        resolve(alice.access)  # and a first-party token opens no tenant realm


def test_banned_external_users_are_refused(make_app):
    app = make_app()
    user = resolve(sign(app, "u1")).user
    User.objects.filter(pk=user.pk).update(is_banned=True)
    refused(sign(app, "u1"), ErrorCode.BANNED)


def test_the_session_check_follows_revocations(make_app):
    app = make_app()
    identity = resolve(sign(app, "u1"))
    assert identity_check(user=identity.user, session_id=identity.session_id) == identity.user
    User.objects.filter(pk=identity.user.pk).update(
        tokens_revoked_before=timezone.now() + timedelta(seconds=1)
    )
    with pytest.raises(ApplicationError):
        identity_check(user=identity.user, session_id=identity.session_id)


def test_the_verification_url_admits_only_2xx(make_app, settings):
    settings.CHAT = {**settings.CHAT, "TENANT_VERIFY_TIMEOUT_SECONDS": 0.5}
    for status, admitted in ((200, True), (204, True), (302, False), (401, False), (500, False)):
        server = VerifyServer(status)
        try:
            app = make_app(verify_url=server.url)
            token = sign(app, "u1")
            identity = resolve(token)
            assert identity.verification is not None
            if admitted:
                verification_check(identity.verification)
            else:
                with pytest.raises(ApplicationError) as info:
                    verification_check(identity.verification)
                assert f"HTTP {status}" in info.value.message
            assert server.tokens == [token]
            verification_check(identity.verification) if admitted else None  # cached: not asked again
            assert len(server.tokens) == 1
        finally:
            server.close()


def test_a_slow_or_unreachable_verification_url_refuses_promptly(make_app, settings):
    settings.CHAT = {**settings.CHAT, "TENANT_VERIFY_TIMEOUT_SECONDS": 0.5}
    server = VerifyServer(200, delay=2)
    try:
        app = make_app(verify_url=server.url)
        identity = resolve(sign(app, "u1"))
        started = time.monotonic()
        with pytest.raises(ApplicationError) as info:
            verification_check(identity.verification)
        assert time.monotonic() - started < 1.5
        assert "did not answer within 0.5 s" in info.value.message
    finally:
        server.close()
    app = make_app("Gone", verify_url=server.url)  # nothing listens there any more
    identity = resolve(sign(app, "u1"))
    with pytest.raises(ApplicationError) as info:
        verification_check(identity.verification)
    assert info.value.message == "The app's verification URL could not be reached."
