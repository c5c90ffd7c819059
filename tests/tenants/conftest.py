import pytest

from accounts.verification import verification_cache_clear


@pytest.fixture
def make_app(db):
    from accounts import tenancy

    def make(name: str = "Acme", **fields):
        return tenancy.app_create(name=name, **fields)

    return make


@pytest.fixture(autouse=True)
def _fresh_verification_cache():
    verification_cache_clear()
    yield
    verification_cache_clear()
