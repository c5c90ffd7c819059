"""The messaging REST API through the real endpoints, authenticated with real Bearer tokens."""

import re

import pytest
from django.core.management import call_command

from chatproject.core.ids import new_public_id
from chatproject.core.timefmt import iso_ms
from messaging.models import Conversation, Message

from .conftest import ban, direct, group, leave, read_seq, self_chat, send, send_many, user_unverified

pytestmark = pytest.mark.django_db

PUBLIC_ID = re.compile(r"^[0-9a-f]{24}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CONVERSATION_KEYS = {
    "id",
    "kind",
    "last_message_at",
    "last_seq",
    "last_rev",
    "last_read_seq",
    "unread",
    "partner",
    "title",
}
MESSAGE_KEYS = {
    "id",
    "seq",
    "rev",
    "conversation_id",
    "sender",
    "kind",
    "content",
    "client_message_id",
    "created_at",
    "edited_at",
    "deleted_at",
    "hidden",
    "deleted",
    "reply_to",
    "reactions",
    "attachment",
}


def messages_url(conversation_id: str) -> str:
    return f"/api/conversations/{conversation_id}/messages/"


def read_url(conversation_id: str) -> str:
    return f"/api/conversations/{conversation_id}/read/"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


# Authentication


def endpoints(conversation_id: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", "/api/conversations/", None),
        ("post", "/api/conversations/direct/", {"user_id": new_public_id()}),
        ("get", messages_url(conversation_id), None),
        ("post", messages_url(conversation_id), {"content": "hi"}),
        ("post", read_url(conversation_id), {}),
    ]


@pytest.mark.parametrize("index", range(5), ids=["list", "direct", "history", "send", "read"])
@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Bearer", "Basic abc"])
def test_every_endpoint_requires_a_valid_bearer_token(alice, bob, client_for, index, header):
    conversation = direct(alice, bob)
    method, url, body = endpoints(conversation.public_id)[index]
    client = client_for()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "extra"}
    assert not Message.objects.exists()


def test_token_of_banned_user_is_refused(alice, bob, client_for):
    ban(alice)
    response = client_for(alice).get("/api/conversations/")
    assert response.status_code == 401


# GET /api/conversations/


def test_conversation_list_shows_conversations_unread_counts_and_partners(alice, bob, carol, client_for):
    with_bob, with_carol, own = direct(alice, bob), direct(alice, carol), self_chat(alice)
    send_many(bob, with_bob, 2)
    send_many(carol, with_carol, 3)
    response = client_for(alice).get("/api/conversations/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "unread_total"}
    assert body["unread_total"] == 5
    assert [c["id"] for c in body["results"]] == [with_carol.public_id, with_bob.public_id, own.public_id]
    first = body["results"][0]
    assert set(first) == CONVERSATION_KEYS
    with_carol.refresh_from_db()
    assert first == {
        "id": with_carol.public_id,
        "kind": "direct",
        "last_message_at": iso_ms(with_carol.last_message_at),
        "last_seq": 3,
        "last_rev": 3,
        "last_read_seq": 0,
        "unread": 3,
        "partner": {"id": carol.id, "display_name": "Carol"},
        "title": None,
    }
    assert body["results"][2]["partner"] is None
    assert body["results"][2]["kind"] == "self"


def test_conversation_list_marks_nothing_as_read(alice, bob, client_for):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    client_for(alice).get("/api/conversations/")
    assert read_seq(alice, conversation) == 0


def test_conversation_list_shows_only_the_callers_conversations(alice, bob, carol, client_for):
    direct(bob, carol)
    ids = [c["id"] for c in client_for(alice).get("/api/conversations/").json()["results"]]
    assert ids == [self_chat(alice).public_id]


def test_conversation_list_endpoint_query_count_does_not_grow(alice, make_user, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/conversations/").status_code == 200
        return len(captured)

    other = make_user()
    send(other, direct(alice, other))
    few = queries()
    for _ in range(10):
        other = make_user()
        send(other, direct(alice, other))
    group(alice, make_user())
    assert queries() == few


# POST /api/conversations/direct/


def test_direct_conversation_is_created_then_returned(alice, bob, client_for, bus_sent):
    created = client_for(alice).post("/api/conversations/direct/", {"user_id": bob.id}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert set(body) == CONVERSATION_KEYS
    assert PUBLIC_ID.match(body["id"])
    assert (body["kind"], body["partner"], body["unread"], body["last_seq"]) == (
        "direct",
        {"id": bob.id, "display_name": "Bob"},
        0,
        0,
    )
    assert [event["type"] for _, event in bus_sent] == ["conversation.created"]

    again = client_for(alice).post("/api/conversations/direct/", {"user_id": bob.id}, format="json")
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    reverse = client_for(bob).post("/api/conversations/direct/", {"user_id": alice.id}, format="json")
    assert reverse.status_code == 200
    assert reverse.json()["id"] == body["id"]
    assert reverse.json()["partner"] == {"id": alice.id, "display_name": "Alice"}
    assert Conversation.objects.filter(kind="direct").count() == 1
    assert len(bus_sent) == 1


def test_existing_direct_conversation_is_returned_with_unread_count(alice, bob, client_for):
    conversation = direct(alice, bob)
    send_many(alice, conversation, 2)
    body = client_for(bob).post("/api/conversations/direct/", {"user_id": alice.id}, format="json").json()
    assert (body["id"], body["last_seq"], body["unread"]) == (conversation.public_id, 2, 2)


@pytest.mark.parametrize("who", ["unknown", "unverified", "banned", "malformed"])
def test_direct_conversation_with_unreachable_user_is_404(alice, bob, client_for, who):
    user_id = {
        "unknown": new_public_id(),
        "unverified": user_unverified().public_id,
        "banned": bob.id,
        "malformed": "nobody",
    }[who]
    if who == "banned":
        ban(bob)
    response = client_for(alice).post("/api/conversations/direct/", {"user_id": user_id}, format="json")
    assert_error(response, 404, "not_found")
    assert not Conversation.objects.filter(kind="direct").exists()


def test_direct_conversation_with_oneself_is_400(alice, client_for):
    response = client_for(alice).post("/api/conversations/direct/", {"user_id": alice.id}, format="json")
    assert_error(response, 400, "invalid")
    assert not Conversation.objects.filter(kind="direct").exists()


# POST /api/conversations/{id}/messages/


def test_send_message_returns_201_and_is_delivered_live(alice, bob, client_for, bus_sent):
    conversation = direct(alice, bob)
    response = client_for(alice).post(
        messages_url(conversation.public_id), {"content": "hello", "client_message_id": "c-1"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    message = Message.objects.get(conversation=conversation)
    assert body == {
        "id": message.public_id,
        "seq": 1,
        "rev": 1,
        "conversation_id": conversation.public_id,
        "sender": {"id": alice.id, "display_name": "Alice"},
        "kind": "text",
        "content": "hello",
        "client_message_id": "c-1",
        "created_at": iso_ms(message.created_at),
        "edited_at": None,
        "deleted_at": None,
        "hidden": False,
        "deleted": False,
        "reply_to": None,
        "reactions": [],
        "attachment": None,
    }
    assert ISO.match(body["created_at"])
    # The same event a socket send produces, to both members.
    assert [(set(groups), event["type"]) for groups, event in bus_sent] == [
        ({f"u.{alice.id}", f"u.{bob.id}"}, "message.created")
    ]
    assert bus_sent[0][1]["message"]["id"] == message.public_id


def test_send_message_retry_with_same_client_message_id_returns_200_and_the_original(
    alice, bob, client_for, bus_sent
):
    conversation = direct(alice, bob)
    client = client_for(alice)
    first = client.post(
        messages_url(conversation.public_id), {"content": "hi", "client_message_id": "c-1"}, format="json"
    )
    retry = client.post(
        messages_url(conversation.public_id),
        {"content": "hi (retry)", "client_message_id": "c-1"},
        format="json",
    )
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == first.json()
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert len(bus_sent) == 1


def test_send_message_without_client_message_id(alice, client_for):
    conversation = self_chat(alice)
    for expected_seq in (1, 2):
        response = client_for(alice).post(
            messages_url(conversation.public_id), {"content": "note"}, format="json"
        )
        assert response.status_code == 201
        assert (response.json()["seq"], response.json()["client_message_id"]) == (expected_seq, None)


def test_send_message_with_null_client_message_id(alice, client_for):
    response = client_for(alice).post(
        messages_url(self_chat(alice).public_id),
        {"content": "note", "client_message_id": None},
        format="json",
    )
    assert response.status_code == 201


def test_send_message_advances_the_senders_read_pointer(alice, bob, client_for):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    client_for(alice).post(messages_url(conversation.public_id), {"content": "hi"}, format="json")
    assert read_seq(alice, conversation) == 3


def test_send_message_into_group(alice, bob, client_for, bus_sent):
    conversation = group(alice, bob)
    response = client_for(bob).post(
        messages_url(conversation.public_id), {"content": "hi all"}, format="json"
    )
    assert response.status_code == 201
    assert bus_sent[0][0] == [f"c.{conversation.public_id}"]


# GET /api/conversations/{id}/messages/


def test_history_is_newest_first_with_a_cursor_to_older_pages(alice, bob, client_for):
    conversation = direct(alice, bob)
    send(alice, conversation, "first")
    send(bob, conversation, "second")
    body = client_for(bob).get(messages_url(conversation.public_id)).json()
    assert set(body) == {"results", "next_before", "next_after"}
    assert [(m["seq"], m["content"], m["sender"]["display_name"]) for m in body["results"]] == [
        (2, "second", "Bob"),
        (1, "first", "Alice"),
    ]
    assert all(set(m) == MESSAGE_KEYS for m in body["results"])
    assert all(m["conversation_id"] == conversation.public_id for m in body["results"])
    assert (body["next_before"], body["next_after"]) == (None, None)


def test_history_pages_backwards_with_next_before(alice, bob, client_for):
    conversation = direct(alice, bob)
    send_many(alice, conversation, 7)
    client = client_for(bob)
    seen, url = [], f"{messages_url(conversation.public_id)}?limit=3"
    while url:
        body = client.get(url).json()
        seen += [m["seq"] for m in body["results"]]
        url = (
            f"{messages_url(conversation.public_id)}?limit=3&before={body['next_before']}"
            if body["next_before"]
            else None
        )
    assert seen == [7, 6, 5, 4, 3, 2, 1]


def test_history_catches_up_oldest_first_with_next_after(alice, bob, client_for):
    conversation = direct(alice, bob)
    send_many(alice, conversation, 5)
    client = client_for(bob)
    first = client.get(f"{messages_url(conversation.public_id)}?after=1&limit=2").json()
    assert ([m["seq"] for m in first["results"]], first["next_after"], first["next_before"]) == (
        [2, 3],
        3,
        None,
    )
    last = client.get(f"{messages_url(conversation.public_id)}?after=3&limit=2").json()
    assert [m["seq"] for m in last["results"]] == [4, 5]
    done = client.get(f"{messages_url(conversation.public_id)}?after=5&limit=2").json()
    assert (done["results"], done["next_after"]) == ([], None)


def test_history_limit_is_capped_at_the_maximum_page_size(alice, client_for, settings):
    settings.CHAT = {**settings.CHAT, "HISTORY_MAX_PAGE_SIZE": 3}
    conversation = self_chat(alice)
    send_many(alice, conversation, 5)
    body = client_for(alice).get(f"{messages_url(conversation.public_id)}?limit=1000").json()
    assert ([m["seq"] for m in body["results"]], body["next_before"]) == ([5, 4, 3], 3)


def test_history_allows_other_query_parameters(alice, client_for):
    conversation = self_chat(alice)
    send(alice, conversation)
    response = client_for(alice).get(f"{messages_url(conversation.public_id)}?format=json")
    assert response.status_code == 200


def test_history_page_uses_a_constant_number_of_queries(alice, bob, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    conversation = direct(alice, bob)
    client = client_for(alice)
    counts = []
    for _ in range(2):
        send_many(bob, conversation, 5)
        with CaptureQueriesContext(connection) as captured:
            client.get(messages_url(conversation.public_id))
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_member_who_left_reads_up_to_leaving_and_cannot_send_or_mark_read(alice, bob, client_for):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    leave(alice, conversation)
    send(bob, conversation)
    client = client_for(alice)
    body = client.get(messages_url(conversation.public_id)).json()
    assert [m["seq"] for m in body["results"]] == [2, 1]
    assert_error(
        client.post(messages_url(conversation.public_id), {"content": "hi"}, format="json"), 404, "not_found"
    )
    assert_error(client.post(read_url(conversation.public_id), {}, format="json"), 404, "not_found")
    assert Message.objects.filter(conversation=conversation).count() == 3


# POST /api/conversations/{id}/read/


def test_mark_read_moves_the_pointer_and_publishes(alice, bob, client_for, bus_sent):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 3)
    client = client_for(alice)
    response = client.post(read_url(conversation.public_id), {"seq": 2}, format="json")
    assert response.status_code == 200
    assert response.json() == {"conversation_id": conversation.public_id, "last_read_seq": 2}
    assert bus_sent[-1][1]["type"] == "conversation.read"
    assert (
        client.post(read_url(conversation.public_id), {"seq": 1}, format="json").json()["last_read_seq"] == 2
    )
    assert client.post(read_url(conversation.public_id), {}, format="json").json()["last_read_seq"] == 3
    assert (
        client.post(read_url(conversation.public_id), {"seq": None}, format="json").json()["last_read_seq"]
        == 3
    )
    assert (
        client.post(read_url(conversation.public_id), {"seq": 99}, format="json").json()["last_read_seq"] == 3
    )
    assert read_seq(alice, conversation) == 3


def test_mark_read_without_a_body(alice, bob, client_for):
    conversation = direct(alice, bob)
    send_many(bob, conversation, 2)
    response = client_for(alice).post(read_url(conversation.public_id))
    assert response.status_code == 200
    assert response.json()["last_read_seq"] == 2


# Non-members learn nothing


@pytest.mark.parametrize("index", range(2, 5), ids=["history", "send", "read"])
def test_non_member_gets_the_same_404_as_for_an_unknown_conversation(alice, bob, carol, client_for, index):
    foreign = direct(bob, carol)
    send(bob, foreign)
    client = client_for(alice)
    responses = []
    for conversation_id in (foreign.public_id, new_public_id()):
        method, url, body = endpoints(conversation_id)[index]
        responses.append(getattr(client, method)(url, body, format="json"))
    for response in responses:
        assert_error(response, 404, "not_found")
    assert responses[0].json() == responses[1].json()
    assert Message.objects.filter(conversation=foreign).count() == 1
    assert read_seq(carol, foreign) == 0


def test_non_member_cannot_read_another_users_self_chat(alice, bob, client_for):
    conversation = self_chat(bob)
    send(bob, conversation, "private")
    response = client_for(alice).get(messages_url(conversation.public_id))
    assert_error(response, 404, "not_found")
    assert b"private" not in response.content


# The schema


def test_schema_documents_the_messaging_endpoints(client_for):
    response = client_for().get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/conversations/"]) == {"get"}
    assert set(paths["/api/conversations/direct/"]) == {"post"}
    assert set(paths["/api/conversations/{conversation_id}/messages/"]) == {"get", "post"}
    assert set(paths["/api/conversations/{conversation_id}/read/"]) == {"post"}


def test_schema_of_the_messaging_endpoints_is_valid_and_without_warnings(tmp_path):
    # Raises SystemExit on any warning or validation error.
    call_command(
        "spectacular",
        "--urlconf",
        "tests.messaging.schema_urls",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
    )
    assert "/api/conversations/{conversation_id}/messages/" in (tmp_path / "schema.yaml").read_text()


def test_rest_sends_are_throttled_per_user(make_user, settings):
    from django.core.cache import cache
    from rest_framework.test import APIClient

    alice = make_user("Alice")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "message_send": "2/min",
        },
    }
    cache.clear()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.access}")
    conversation = alice.user.memberships.get().conversation.public_id
    url = f"/api/conversations/{conversation}/messages/"
    statuses = [client.post(url, {"content": f"m{i}"}, format="json").status_code for i in range(3)]
    assert statuses == [201, 201, 429]
    assert client.get(url).status_code == 200  # reading is not throttled
    assert client.post(url, {"content": "x"}, format="json").json()["code"] == "throttled"
    cache.clear()
