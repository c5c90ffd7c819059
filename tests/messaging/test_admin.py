"""The messaging admin: conversations and messages can be found and looked at, not rewritten."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chatproject.core.ids import new_public_id
from messaging.models import Message

from .conftest import direct, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_web(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin@example.com", "correct horse 42"))
    return client


@pytest.fixture
def chat(alice, bob):
    conversation = direct(alice, bob)
    return conversation, send(alice, conversation, "the quick brown fox"), send(bob, conversation, "lazy dog")


def test_conversation_list_and_detail_show_members(admin_web, chat):
    conversation, _, _ = chat
    response = admin_web.get("/admin/messaging/conversation/")
    assert response.status_code == 200
    assert conversation.public_id in response.content.decode()
    detail = admin_web.get(f"/admin/messaging/conversation/{conversation.pk}/change/")
    assert detail.status_code == 200
    assert "Alice" in detail.content.decode() and "Bob" in detail.content.decode()


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("conversation id", {"the quick brown fox", "lazy dog"}),
        ("message id", {"lazy dog"}),
        ("sender email", {"the quick brown fox"}),
        ("sender name", {"lazy dog"}),
        ("content", {"the quick brown fox"}),
    ],
)
def test_message_search_by_conversation_sender_and_content(admin_web, alice, chat, by, expected):
    conversation, _first, second = chat
    term = {
        "conversation id": conversation.public_id,
        "message id": second.public_id,
        "sender email": alice.user.email,
        "sender name": "Bob",
        "content": "brown",
    }[by]
    response = admin_web.get("/admin/messaging/message/", {"q": term})
    assert response.status_code == 200
    assert {m.content for m in response.context["cl"].result_list} == expected


def test_message_list_filters_by_kind(admin_web, chat):
    response = admin_web.get("/admin/messaging/message/", {"kind__exact": "system"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_message_is_view_only(admin_web, chat):
    _, message, _ = chat
    url = f"/admin/messaging/message/{message.pk}/change/"
    assert admin_web.get(url).status_code == 200
    response = admin_web.post(url, {"content": "rewritten", "seq": 9})
    assert response.status_code == 403
    message.refresh_from_db()
    assert (message.content, message.seq) == ("the quick brown fox", 1)


@pytest.mark.parametrize("model", ["conversation", "message"])
def test_nothing_is_added_or_deleted_in_the_admin(admin_web, chat, model):
    conversation, message, _ = chat
    pk = conversation.pk if model == "conversation" else message.pk
    assert admin_web.get(f"/admin/messaging/{model}/add/").status_code == 403
    assert admin_web.post(f"/admin/messaging/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert Message.objects.count() == 2


def _searched(admin_web, path: str, term: str) -> tuple[list, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = admin_web.get(path, {"q": term})
    assert response.status_code == 200
    return list(response.context["cl"].result_list), [q["sql"].upper() for q in queries]


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_an_id_in_any_case_is_looked_up_exactly_not_compared_with_every_row(admin_web, chat, case):
    conversation, first, second = chat
    found, sql = _searched(admin_web, "/admin/messaging/message/", case(second.public_id))
    assert [m.content for m in found] == ["lazy dog"]
    assert not any("LIKE" in q or "UPPER(" in q for q in sql)
    found, sql = _searched(admin_web, "/admin/messaging/message/", case(conversation.public_id))
    assert {m.content for m in found} == {"the quick brown fox", "lazy dog"}
    assert not any("LIKE" in q or "UPPER(" in q for q in sql)
    found, _ = _searched(admin_web, "/admin/messaging/conversation/", case(conversation.public_id))
    assert found == [conversation]


def test_text_is_still_searched_in_every_field(admin_web, chat):
    found, sql = _searched(admin_web, "/admin/messaging/message/", "brown")
    assert [m.content for m in found] == ["the quick brown fox"]
    assert any("LIKE" in q for q in sql)


def test_an_id_of_nothing_finds_nothing(admin_web, chat):
    for path in (
        "/admin/messaging/message/",
        "/admin/messaging/conversation/",
        "/admin/messaging/chatrequest/",
    ):
        found, _ = _searched(admin_web, path, new_public_id())
        assert found == []
