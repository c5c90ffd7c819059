"""Leaving and rejoining a conversation that started as a chat request of its own
(`conversation_leave`, `conversation_rejoin`): what stops reaching the leaver, what they keep,
who may come back, what is refused, the REST endpoints and the ExpressChat extension events."""

import json

import pytest

from chatproject.core.errors import ApplicationError
from gateway.protocols.expresschat.render import render as expresschat_render
from messaging import selectors, services
from messaging.models import ChatRequest, Membership

from .conftest import direct, group, send

pytestmark = pytest.mark.django_db


def room(a, b, *, accepted: bool = True) -> ChatRequest:
    """A non-distinct request from a to b (a conversation of its own), accepted by default."""
    request, _created = services.chat_request_create(user=a.user, other_user_id=b.id, distinct=False)
    if accepted:
        services.chat_request_accept(user=b.user, request_id=request.public_id)
    return request


def leave(a, request: ChatRequest) -> Membership:
    return services.conversation_leave(user=a.user, conversation_id=request.conversation.public_id)


def rejoin(a, request: ChatRequest) -> Membership:
    return services.conversation_rejoin(user=a.user, conversation_id=request.conversation.public_id)


def listed(a) -> list[str]:
    return [s.id for s in selectors.conversation_list_for_user(user=a.user)]


def texts(a, request: ChatRequest) -> list[str]:
    page = selectors.message_page(user=a.user, conversation_id=request.conversation.public_id)
    return sorted(m.content for m in page.messages)


def refused(code: str, fn, **kwargs) -> None:
    with pytest.raises(ApplicationError) as error:
        fn(**kwargs)
    assert error.value.code == code, error.value.message


def of_type(bus_sent, kind: str) -> list[tuple]:
    return [(groups, event) for groups, event in bus_sent if event["type"] == kind]


def test_leaving_ends_the_membership_and_keeps_history_up_to_it(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    request = room(alice, bob)
    chat = request.conversation
    send(alice, chat, "one")
    send(bob, chat, "two")
    with django_capture_on_commit_callbacks(execute=True):
        left = leave(bob, request)
    assert left.left_at is not None and left.left_seq == 2
    ((groups, event),) = of_type(bus_sent, "conversation.member_left")
    assert set(groups) == {f"u.{alice.id}", f"u.{bob.id}"}  # the room says so; Bob's devices too
    assert event["actor"] == bob.id and event["user"] == {"id": bob.id, "name": "Bob"}
    assert event["conversation"] == {"id": chat.public_id, "kind": "direct"}
    # Nothing more reaches Bob: list, unread, live messages, typing, sending.
    bus_sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        send(alice, chat, "three")
    assert [tuple(g) for g, e in bus_sent if e["type"] == "message.created"] == [(f"u.{alice.id}",)]
    assert chat.public_id not in listed(bob) and selectors.unread_total(user=bob.user) == 0
    refused("not_found", send, a=bob, conversation=chat, content="still here?")
    refused("not_found", selectors.conversation_typing_target, user=bob.user, conversation_id=chat.public_id)
    target = selectors.conversation_typing_target(user=alice.user, conversation_id=chat.public_id)
    assert target.peer_ids == ()
    # Bob reads the history up to his leaving; Alice still sees Bob as her partner.
    assert texts(bob, request) == ["one", "two"]
    assert texts(alice, request) == ["one", "three", "two"]
    summary = selectors.conversation_summary_get(user=alice.user, conversation_id=chat.public_id)
    assert summary.partner_id == bob.id
    # Leaving again changes nothing and tells nobody.
    bus_sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = leave(bob, request)
    assert again.left_seq == 2 and bus_sent == []


def test_rejoining_restores_the_membership_with_what_was_written_meanwhile_unread(
    alice, bob, bus_sent, django_capture_on_commit_callbacks
):
    request = room(alice, bob)
    chat = request.conversation
    send(alice, chat, "before")
    services.conversation_mark_read(user=bob.user, conversation_id=chat.public_id)
    leave(bob, request)
    send(alice, chat, "while away 1")
    send(alice, chat, "while away 2")
    with django_capture_on_commit_callbacks(execute=True):
        back = rejoin(bob, request)
    assert back.left_at is None and back.left_seq is None
    ((groups, event),) = of_type(bus_sent, "conversation.member_rejoined")
    assert set(groups) == {f"u.{alice.id}", f"u.{bob.id}"} and event["seq"] == 3
    assert chat.public_id in listed(bob) and selectors.unread_total(user=bob.user) == 2
    # The messages written while Bob was away reach him through history.
    assert texts(bob, request) == ["before", "while away 1", "while away 2"]
    send(bob, chat, "I am back")
    # Rejoining as a member changes nothing.
    bus_sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        rejoin(bob, request)
    assert bus_sent == []


def test_only_a_former_member_can_rejoin(alice, bob, carol):
    request = room(alice, bob)
    chat_id = request.conversation.public_id
    leave(bob, request)
    for fn in (services.conversation_leave, services.conversation_rejoin):
        refused("not_found", fn, user=carol.user, conversation_id=chat_id)
        refused("not_found", fn, user=carol.user, conversation_id="nope")
    assert not Membership.objects.filter(conversation=request.conversation, user=carol.user).exists()
    # Both may be away at once; each comes back by themselves.
    leave(alice, request)
    rejoin(alice, request)
    assert Membership.objects.get(conversation=request.conversation, user=bob.user).left_at is not None


def test_the_pairs_one_direct_chat_and_groups_cannot_be_left(alice, bob, carol):
    pair = direct(alice, bob)
    refused("conflict", services.conversation_leave, user=alice.user, conversation_id=pair.public_id)
    asked, _created = services.chat_request_create(user=alice.user, other_user_id=carol.id)  # distinct
    chat_id = asked.conversation.public_id
    refused("conflict", services.conversation_leave, user=alice.user, conversation_id=chat_id)
    refused("conflict", services.conversation_rejoin, user=alice.user, conversation_id=chat_id)
    crowd = group(alice, bob)
    refused("not_found", services.conversation_leave, user=alice.user, conversation_id=crowd.public_id)
    assert not Membership.objects.filter(left_at__isnull=False).exists()


def test_a_pending_request_recipient_cannot_leave_and_a_requester_who_left_stays_out(alice, bob):
    request = room(alice, bob, accepted=False)
    chat = request.conversation
    refused("not_found", services.conversation_leave, user=bob.user, conversation_id=chat.public_id)
    send(alice, chat, "anyone?")
    leave(alice, request)
    # Bob accepts later: he is in, Alice (who left by herself) is not brought back.
    services.chat_request_accept(user=bob.user, request_id=request.public_id)
    send(bob, chat, "hello?")
    assert chat.public_id not in listed(alice)
    rejoin(alice, request)
    assert selectors.unread_total(user=alice.user) == 1


def test_a_declined_requester_cannot_rejoin(alice, bob):
    request = room(alice, bob, accepted=False)
    services.chat_request_decline(user=bob.user, request_id=request.public_id)
    chat_id = request.conversation.public_id
    refused("permission_denied", services.conversation_rejoin, user=alice.user, conversation_id=chat_id)
    leave(alice, request)  # already out: changes nothing
    # Accepting after the decline brings her back, as before.
    services.chat_request_accept(user=bob.user, request_id=request.public_id)
    assert chat_id in listed(alice)


def test_rest_leave_and_rejoin(alice, bob, carol, client_for):
    request = room(alice, bob)
    chat_id = request.conversation.public_id
    as_alice, as_bob, as_carol = client_for(alice), client_for(bob), client_for(carol)
    as_alice.post(f"/api/conversations/{chat_id}/messages/", {"content": "hi"}, format="json")
    assert as_bob.post(f"/api/conversations/{chat_id}/leave/").status_code == 204
    assert as_bob.post(f"/api/conversations/{chat_id}/leave/").status_code == 204
    assert as_bob.get(f"/api/conversations/{chat_id}/messages/").status_code == 200  # history kept
    sent = as_bob.post(f"/api/conversations/{chat_id}/messages/", {"content": "x"}, format="json")
    assert sent.status_code == 404
    as_alice.post(f"/api/conversations/{chat_id}/messages/", {"content": "are you there"}, format="json")
    assert as_carol.post(f"/api/conversations/{chat_id}/rejoin/").status_code == 404
    back = as_bob.post(f"/api/conversations/{chat_id}/rejoin/")
    assert back.status_code == 200 and back.json()["id"] == chat_id
    assert back.json()["unread"] == 2
    pair = direct(alice, carol)
    conflict = as_alice.post(f"/api/conversations/{pair.public_id}/leave/")
    assert conflict.status_code == 409 and conflict.json()["extra"] == {"reason": "not_leavable"}
    assert client_for().post(f"/api/conversations/{chat_id}/leave/").status_code == 401
    schema = client_for().get("/api/schema/?format=json").json()
    paths = {"/api/conversations/{conversation_id}/leave/", "/api/conversations/{conversation_id}/rejoin/"}
    assert paths <= set(schema["paths"])


def test_expresschat_renders_leave_and_rejoin(alice, bob, bus_sent, django_capture_on_commit_callbacks):
    request = room(alice, bob)
    with django_capture_on_commit_callbacks(execute=True):
        leave(bob, request)
        rejoin(bob, request)
    rendered = [expresschat_render(e) for _g, e in bus_sent if e["type"].startswith("conversation.member_")]
    assert [[emit.name for emit in emits] for emits in rendered] == [
        ["chat-member-left"],
        ["chat-member-rejoined"],
    ]
    payload = rendered[0][0].payload
    assert json.loads(json.dumps(payload)) == payload
    assert payload == {"ChatId": request.conversation.public_id, "UserId": bob.id, "Name": "Bob", "Seq": 0}
