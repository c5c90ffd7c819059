"""ExpressChat's rendering of a new message: the exact wire text (keys in the original's order,
then the extensions), for a text message, a reply and a media message, and who gets each event."""

import json

from gateway.audience import ACTOR
from gateway.protocols.expresschat.render import render


def _event(conversation_kind: str, **message) -> dict:
    return {
        "type": "message.created",
        "origin": "conn-1",
        "actor": "u-sender",
        "conversation": {"id": "c-1", "kind": conversation_kind},
        "message": {
            "id": "m-1",
            "seq": 7,
            "rev": 9,
            "kind": "text",
            "content": "hello",
            "sender_id": "u-sender",
            "sender_name": "Sender",
            "client_message_id": "x-1",
            "created_at": "2026-12-06T03:00:00.000Z",
            "reply_to": None,
            "attachment": None,
        }
        | message,
    }


def _wire(emit) -> str:
    return json.dumps(emit.payload, separators=(",", ":"), ensure_ascii=False)


def test_a_direct_text_message_goes_to_the_receiver_and_as_an_echo_to_the_senders_other_devices():
    receive, echo = render(_event("direct"))
    assert (receive.name, receive.skip, receive.to) == ("receive-personal-message", (ACTOR,), "all")
    assert (echo.name, echo.to, echo.skip_origin) == ("message-sent", ACTOR, True)
    assert (
        _wire(receive)
        == _wire(echo)
        == (
            '{"ChatId":"c-1","Content":"hello","Sender":"Sender","Id":"m-1","Seq":7,"Rev":9,'
            '"SenderId":"u-sender","Timestamp":"2026-12-06T03:00:00.000Z","Kind":"text","Attachment":null}'
        )
    )


def test_a_reply_and_a_media_message_keep_the_key_order():
    reply = {"id": "m-0", "seq": 6, "sender_name": "B", "sender_id": "u-b", "excerpt": "hi", "deleted": False}
    (receive, _echo) = render(_event("group", reply_to=reply))
    assert receive.name == "receive-group-message"
    assert _wire(receive) == (
        '{"ChatId":"c-1","Content":"hello","Sender":"Sender","Id":"m-1","Seq":7,"Rev":9,'
        '"SenderId":"u-sender","Timestamp":"2026-12-06T03:00:00.000Z","ReplyTo":{"Id":"m-0","Seq":6,'
        '"Sender":"B","SenderId":"u-b","Excerpt":"hi","Deleted":false,"Kind":"text"},"Kind":"text",'
        '"Attachment":null}'
    )
    attachment = {
        "id": "a-1",
        "kind": "image",
        "url": "https://x/a.png",
        "content_type": "image/png",
        "size": 10,
        "name": "a.png",
        "width": 2,
        "height": 3,
    }
    (echo,) = render(_event("self", kind="image", content="look", attachment=attachment))
    assert echo.name == "message-sent"
    assert _wire(echo) == (
        '{"ChatId":"c-1","Content":"look\\nhttps://x/a.png","Sender":"Sender","Id":"m-1","Seq":7,'
        '"Rev":9,"SenderId":"u-sender","Timestamp":"2026-12-06T03:00:00.000Z","Kind":"image",'
        '"Attachment":{"Id":"a-1","Kind":"image","Url":"https://x/a.png","Type":"image/png",'
        '"Size":10,"Name":"a.png","Width":2,"Height":3},"Caption":"look"}'
    )


def test_an_event_of_an_older_process_without_rev_kind_or_attachment_renders():
    event = _event("direct")
    for key in ("rev", "attachment"):
        del event["message"][key]
    receive, _echo = render(event)
    assert receive.payload["Rev"] is None and receive.payload["Attachment"] is None
