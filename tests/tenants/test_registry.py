"""The registry keys of a mount's policy: realm, credentials, apps."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.identity import APPS, FIRST_PARTY, Policy
from gateway.registry import mounts

EXPRESSCHAT = {"protocol": "gateway.protocols.expresschat", "transport": "eio4", "path": "/socket.io/"}


def with_mounts(settings, *entries):
    settings.CHAT = {**settings.CHAT, "PROTOCOLS": list(entries)}
    return mounts()


def test_the_default_policy_is_first_party_access_tokens(settings):
    (mount,) = with_mounts(settings, EXPRESSCHAT)
    assert mount.policy == Policy(realm=FIRST_PARTY, forms=("access",), protocol="expresschat")


def test_an_apps_mount_takes_its_forms_and_apps(settings):
    entry = {**EXPRESSCHAT, "namespace": "/apps", "realm": "apps", "credentials": ["id_handle", "tenant_jwt"]}
    (mount,) = with_mounts(settings, {**entry, "apps": ["a" * 24]})
    assert mount.policy == Policy(APPS, ("id_handle", "tenant_jwt"), ("a" * 24,), "expresschat")
    (mount,) = with_mounts(settings, {**EXPRESSCHAT, "realm": "apps"})
    assert mount.policy.forms == ("tenant_jwt",)


@pytest.mark.parametrize(
    "extra",
    [
        {"realm": "tenants"},
        {"realm": "first_party", "credentials": ["tenant_jwt"]},
        {"realm": "apps", "credentials": ["access"]},
        {"realm": "apps", "credentials": []},
        {"realm": "apps", "credentials": "tenant_jwt"},
        {"realm": "first_party", "apps": ["x"]},
        {"realm": "apps", "apps": "x"},
    ],
)
def test_bad_policies_refuse_to_start(settings, extra):
    with pytest.raises(ImproperlyConfigured):
        with_mounts(settings, {**EXPRESSCHAT, **extra})
