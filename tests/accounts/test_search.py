"""User search: plain text, visible users only, bounded, emails private."""

import pytest

from accounts import services

from .conftest import PASSWORD, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def searcher(api, alice):
    access = api.post("/api/auth/login", {"email": "alice@example.com", "password": PASSWORD}, format="json")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access.json()['access']}")
    return api


def names(response) -> list[str]:
    assert response.status_code == 200
    return [user["display_name"] for user in response.json()["results"]]


def test_search_excludes_unverified_banned_and_inactive_users(searcher):
    user_make("ann@example.com", display_name="Annie Verified")
    user_make("unv@example.com", display_name="Annie Unverified", verified=False)
    user_make("ban@example.com", display_name="Annie Banned", is_banned=True)
    user_make("off@example.com", display_name="Annie Inactive", is_active=False)
    assert names(searcher.get("/api/users/search", {"q": "annie"})) == ["Annie Verified"]


def test_search_hides_other_users_emails(searcher, bob):
    results = searcher.get("/api/users/search", {"q": "bob"}).json()["results"]
    assert results == [{"id": bob.public_id, "display_name": "Bob", "created_at": results[0]["created_at"]}]
    mine = searcher.get("/api/users/search", {"q": "alice"}).json()["results"]
    assert mine[0]["email"] == "alice@example.com"


def test_search_exposes_emails_when_configured(searcher, bob, settings):
    settings.CHAT = {**settings.CHAT, "SEARCH_EXPOSE_EMAILS": True}
    assert searcher.get("/api/users/search", {"q": "bob"}).json()["results"][0]["email"] == "bob@example.com"


def test_search_finds_by_exact_email_only(searcher, bob):
    assert names(searcher.get("/api/users/search", {"q": "BOB@example.com"})) == ["Bob"]
    assert names(searcher.get("/api/users/search", {"q": "@example.com"})) == []


@pytest.mark.parametrize("query", [".*", "(", "%", "_", "[a-z]+", "\\"])
def test_search_treats_input_as_plain_text(searcher, query):
    user_make("pct@example.com", display_name="100% real_name (x)")
    found = names(searcher.get("/api/users/search", {"q": query}))
    expected = ["100% real_name (x)"] if query in "100% real_name (x)" else []
    assert found == expected


def test_search_is_bounded(searcher, alice, settings):
    for index in range(settings.CHAT["SEARCH_MAX_RESULTS"] + 5):
        user_make(f"z{index}@example.com", display_name=f"Zed {index:02d}")
    assert len(names(searcher.get("/api/users/search", {"q": "zed"}))) == settings.CHAT["SEARCH_MAX_RESULTS"]
    assert len(services.user_search(user=alice, query="zed", limit=3)) == 3


def test_search_requires_authentication(api):
    assert api.get("/api/users/search", {"q": "a"}).status_code == 401
