"""Chat requests (messaging.models.ChatRequest): services, what reaches the recipient before
and after accepting, the REST API through real logins, and the ExpressChat extension events."""

import json

import pytest

from chatproject.core.errors import ApplicationError
from chatproject.core.ids import new_public_id
from gateway.protocols.expresschat.render import render as expresschat_render
from messaging import selectors, services
from messaging.models import ChatRequest, Conversation, Membership

from .conftest import send

pytestmark = pytest.mark.django_db


def ask(a, b, **kwargs) -> ChatRequest:
    request, created = services.chat_request_create(user=a.user, other_user_id=b.id, **kwargs)
    assert created
    return request


def listed(user) -> list[str]:
    return [s.id for s in selectors.conversation_list_for_user(user=user.user)]


def events_of(bus_sent, kind: str) -> list[tuple]:
    return [(groups, event) for groups, event in bus_sent if event["type"] == kind]


def test_request_makes_requester_the_only_member_and_hides_it_from_the_recipient(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(alice, bob)
    conversation = request.conversation
    assert conversation.kind == Conversation.Kind.DIRECT
    assert list(Membership.objects.filter(conversation=conversation).values_list("user_id", flat=True)) == [
        alice.user.pk
    ]
    with django_capture_on_commit_callbacks(execute=True):
        send(alice, conversation, "may I?")
        send(alice, conversation, "please")
    assert conversation.public_id in listed(alice)
    assert conversation.public_id not in listed(bob)
    assert selectors.unread_total(user=bob.user) == 0
    # Alice's list names Bob as the partner although he is no member yet.
    summary = selectors.conversation_summary_get(user=alice.user, conversation_id=conversation.public_id)
    assert summary.partner_id == bob.id
    # The messages reached Alice's devices only; the request reached both.
    created = [e for g, e in bus_sent if e["type"] == "message.created"]
    assert len(created) == 2
    assert {tuple(g) for g, e in bus_sent if e["type"] == "message.created"} == {(f"u.{alice.id}",)}
    ((groups, event),) = events_of(bus_sent, "chat_request.created")
    assert set(groups) == {f"u.{alice.id}", f"u.{bob.id}"}
    assert event["actor"] == alice.id and event["subject"] == bob.id
    assert event["request"]["state"] == "pending" and event["request"]["recipient"]["id"] == bob.id


def test_recipient_sees_the_request_with_a_preview(alice, bob):
    request = ask(alice, bob)
    send(alice, request.conversation, "x" * 300)
    (view,) = selectors.chat_requests_for_user(user=bob.user)
    assert view.request.public_id == request.public_id
    assert view.message_count == 1 and view.last_message == "x" * 200
    assert selectors.chat_requests_for_user(user=alice.user) == []
    assert [v.request.pk for v in selectors.chat_requests_for_user(user=alice.user, box="sent")] == [
        request.pk
    ]


def test_recipient_cannot_read_or_write_before_accepting(alice, bob):
    request = ask(alice, bob)
    with pytest.raises(ApplicationError) as denied:
        selectors.message_page(user=bob.user, conversation_id=request.conversation.public_id)
    assert denied.value.code == "not_found"
    with pytest.raises(ApplicationError) as refused:
        send(bob, request.conversation, "sneaking in")
    assert refused.value.code == "not_found"


def test_accept_adds_the_recipient_with_the_messages_unread(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    request = ask(alice, bob)
    send(alice, request.conversation, "one")
    send(alice, request.conversation, "two")
    with django_capture_on_commit_callbacks(execute=True):
        accepted = services.chat_request_accept(user=bob.user, request_id=request.public_id)
    assert accepted.state == ChatRequest.State.ACCEPTED and accepted.decided_at is not None
    assert request.conversation.public_id in listed(bob)
    assert selectors.unread_total(user=bob.user) == 2
    send(bob, request.conversation, "welcome")
    ((groups, event),) = events_of(bus_sent, "chat_request.accepted")
    assert set(groups) == {f"u.{alice.id}", f"u.{bob.id}"}
    assert event["actor"] == bob.id and event["subject"] == alice.id
    # Accepting again changes nothing and publishes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        services.chat_request_accept(user=bob.user, request_id=request.public_id)
    assert len(events_of(bus_sent, "chat_request.accepted")) == 1


def test_only_the_recipient_can_decide(alice, bob, carol):
    request = ask(alice, bob)
    for who in (alice, carol):
        for decide in (services.chat_request_accept, services.chat_request_decline):
            with pytest.raises(ApplicationError) as refused:
                decide(user=who.user, request_id=request.public_id)
            assert refused.value.code == "not_found"
    for bad in (None, 5, "nope", new_public_id()):
        with pytest.raises(ApplicationError) as refused:
            services.chat_request_accept(user=bob.user, request_id=bad)
        assert refused.value.code == "not_found"
    assert ChatRequest.objects.get(pk=request.pk).state == ChatRequest.State.PENDING
    with pytest.raises(ApplicationError):
        selectors.chat_request_get(user=carol.user, request_id=request.public_id)


def test_decline_ends_the_requesters_membership(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    request = ask(alice, bob)
    send(alice, request.conversation, "hi")
    with django_capture_on_commit_callbacks(execute=True):
        declined = services.chat_request_decline(user=bob.user, request_id=request.public_id)
    assert declined.state == ChatRequest.State.DECLINED
    with pytest.raises(ApplicationError) as refused:
        send(alice, request.conversation, "hello??")
    assert refused.value.code == "not_found"
    # Alice still reads what she wrote.
    page = selectors.message_page(user=alice.user, conversation_id=request.conversation.public_id)
    assert [m.content for m in page.messages] == ["hi"]
    assert request.conversation.public_id not in listed(bob)
    assert len(events_of(bus_sent, "chat_request.declined")) == 1
    # Asking again after a decline is refused; declining again changes nothing.
    with pytest.raises(ApplicationError) as again:
        services.chat_request_create(user=alice.user, other_user_id=bob.id)
    assert again.value.code == "permission_denied"
    with django_capture_on_commit_callbacks(execute=True):
        services.chat_request_decline(user=bob.user, request_id=request.public_id)
    assert len(events_of(bus_sent, "chat_request.declined")) == 1
    # Bob may change his mind: both are members again.
    services.chat_request_accept(user=bob.user, request_id=request.public_id)
    send(alice, request.conversation, "thanks")
    assert selectors.unread_total(user=bob.user) == 2


def test_accepted_request_cannot_be_declined(alice, bob):
    request = ask(alice, bob)
    services.chat_request_accept(user=bob.user, request_id=request.public_id)
    with pytest.raises(ApplicationError) as refused:
        services.chat_request_decline(user=bob.user, request_id=request.public_id)
    assert refused.value.code == "conflict"


def test_distinct_requests_are_one_per_pair(alice, bob):
    request = ask(alice, bob)
    again, created = services.chat_request_create(user=alice.user, other_user_id=bob.id)
    assert (again.pk, created) == (request.pk, False)
    # Bob asking back accepts Alice's request.
    theirs, created = services.chat_request_create(user=bob.user, other_user_id=alice.id)
    assert (theirs.pk, theirs.state, created) == (request.pk, ChatRequest.State.ACCEPTED, False)
    with pytest.raises(ApplicationError) as conflict:
        services.chat_request_create(user=alice.user, other_user_id=bob.id)
    assert conflict.value.code == "conflict"
    assert conflict.value.extra == {"conversation_id": request.conversation.public_id}


def test_request_to_a_pair_that_chats_already_is_a_conflict(alice, bob):
    conversation, _partner, _created = services.direct_conversation_get_or_create(
        user=alice.user, other_user_id=bob.id
    )
    with pytest.raises(ApplicationError) as conflict:
        services.chat_request_create(user=bob.user, other_user_id=alice.id)
    assert conflict.value.extra == {"conversation_id": conversation.public_id}


def test_opening_the_direct_chat_with_the_requester_accepts(alice, bob):
    request = ask(alice, bob)
    conversation, _partner, created = services.direct_conversation_get_or_create(
        user=bob.user, other_user_id=alice.id
    )
    assert (conversation.pk, created) == (request.conversation_id, False)
    assert ChatRequest.objects.get(pk=request.pk).state == ChatRequest.State.ACCEPTED
    assert conversation.public_id in listed(bob)


def test_non_distinct_requests_are_separate_conversations(alice, bob):
    first = ask(alice, bob, distinct=False)
    second = ask(alice, bob, distinct=False)
    assert first.conversation_id != second.conversation_id
    services.chat_request_accept(user=bob.user, request_id=second.public_id)
    assert second.conversation.public_id in listed(bob) and first.conversation.public_id not in listed(bob)


def test_request_partner_rules_are_the_direct_chats(alice, bob):
    for bad in (alice.id, new_public_id(), "x", None):
        with pytest.raises(ApplicationError):
            services.chat_request_create(user=alice.user, other_user_id=bad)
    assert not ChatRequest.objects.exists()


def test_bad_list_filters_are_invalid(alice):
    for kwargs in ({"box": "inbox"}, {"state": "maybe"}):
        with pytest.raises(ApplicationError) as refused:
            selectors.chat_requests_for_user(user=alice.user, **kwargs)
        assert refused.value.code == "invalid"


# --- REST -------------------------------------------------------------------------------------


def test_rest_request_list_accept_and_decline(alice, bob, carol, client_for):
    as_alice, as_bob, as_carol = client_for(alice), client_for(bob), client_for(carol)
    made = as_alice.post("/api/chat-requests/", {"user_id": bob.id}, format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert set(body) == {
        "id",
        "state",
        "conversation_id",
        "requester",
        "recipient",
        "created_at",
        "decided_at",
        "message_count",
        "last_message",
    }
    assert body["state"] == "pending" and body["requester"] == {"id": alice.id, "display_name": "Alice"}
    assert as_alice.post("/api/chat-requests/", {"user_id": bob.id}, format="json").status_code == 200
    as_alice.post(
        f"/api/conversations/{body['conversation_id']}/messages/", {"content": "hi Bob"}, format="json"
    )
    inbox = as_bob.get("/api/chat-requests/").json()["results"]
    assert [(r["id"], r["last_message"], r["message_count"]) for r in inbox] == [(body["id"], "hi Bob", 1)]
    assert as_bob.get("/api/conversations/").json()["results"] == [
        c for c in as_bob.get("/api/conversations/").json()["results"] if c["kind"] == "self"
    ]
    assert as_carol.get(f"/api/chat-requests/{body['id']}/").status_code == 404
    assert as_alice.post(f"/api/chat-requests/{body['id']}/accept/").status_code == 404
    assert as_bob.get("/api/chat-requests/?box=nope").status_code == 400
    accepted = as_bob.post(f"/api/chat-requests/{body['id']}/accept/")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    chats = as_bob.get("/api/conversations/").json()
    assert chats["unread_total"] == 1
    assert any(c["id"] == body["conversation_id"] for c in chats["results"])
    assert as_bob.post(f"/api/chat-requests/{body['id']}/decline/").status_code == 409
    assert as_alice.post("/api/chat-requests/", {"user_id": bob.id}, format="json").status_code == 409
    other = as_carol.post("/api/chat-requests/", {"user_id": bob.id}, format="json").json()
    declined = as_bob.post(f"/api/chat-requests/{other['id']}/decline/")
    assert declined.json()["state"] == "declined"
    assert as_bob.get("/api/chat-requests/?state=declined").json()["results"][0]["id"] == other["id"]
    assert client_for().get("/api/chat-requests/").status_code == 401
    bad = as_alice.post("/api/chat-requests/", {"user_id": 5}, format="json")
    assert bad.status_code == 400


def test_rest_schema_documents_chat_requests(client_for):
    schema = client_for().get("/api/schema/?format=json").json()
    assert {"/api/chat-requests/", "/api/chat-requests/{request_id}/accept/"} <= set(schema["paths"])


# --- ExpressChat extension events -------------------------------------------------------------


def test_expresschat_renders_chat_request_events(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = ask(alice, bob)
        services.chat_request_accept(user=bob.user, request_id=request.public_id)
    rendered = [expresschat_render(e) for _g, e in bus_sent if e["type"].startswith("chat_request.")]
    names = [[emit.name for emit in emits] for emits in rendered]
    assert names == [["chat-request"], ["chat-request-accepted"]]
    payload = rendered[0][0].payload
    assert json.loads(json.dumps(payload)) == payload
    assert payload["RequestId"] == request.public_id and payload["ChatId"] == request.conversation.public_id
    assert payload["Requester"] == {"Id": alice.id, "Name": "Alice"} and payload["State"] == "pending"
    assert rendered[1][0].payload["State"] == "accepted" and rendered[1][0].payload["DecidedAt"]


def test_admin_lists_requests_read_only(admin_client, alice, bob):
    request = ask(alice, bob)
    listed = admin_client.get("/admin/messaging/chatrequest/")
    assert listed.status_code == 200 and request.public_id in listed.content.decode()
    detail = admin_client.get(f"/admin/messaging/chatrequest/{request.pk}/change/")
    assert detail.status_code == 200
    assert (
        admin_client.post(f"/admin/messaging/chatrequest/{request.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert ChatRequest.objects.filter(pk=request.pk).exists()


def test_admin_finds_a_request_by_its_id_or_its_conversations(admin_client, alice, bob):
    request = ask(alice, bob)
    for term in (request.public_id, request.conversation.public_id.upper()):
        found = admin_client.get("/admin/messaging/chatrequest/", {"q": term}).context["cl"].result_list
        assert list(found) == [request]
