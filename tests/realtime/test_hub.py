"""The hub's own rules, without a transport."""

from gateway.hub import Hub


async def test_an_event_on_an_ended_connection_gets_an_error_ack_not_silence():
    ack = await Hub().handle("ended-connection", "send-personal-message", {"ChatId": "x", "Content": "hi"})
    assert ack == {
        "ok": False,
        "error": {
            "code": "not_authenticated",
            "message": "The connection has ended; reconnect.",
            "extra": {},
        },
    }
