"""The hub's own rules, with a protocol and a transport that record what they are asked."""

from typing import Any

from gateway.hub import Hub
from gateway.protocol import Answer, Protocol
from gateway.protocols.expresschat import PROTOCOL as EXPRESSCHAT


class Recorder:
    name = "test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def send(self, conn_id: str, name: str, payload: Any) -> None:
        self.sent.append((conn_id, name, payload))

    async def fanout(self, target, name, payload, *, only, skip) -> None:
        self.sent.append((target, name, payload))

    async def close(self, conn_id: str) -> None: ...

    async def join_local(self, conn_id: str, groups: list[str]) -> None: ...

    async def leave_local(self, conn_id: str, groups: list[str]) -> None: ...

    def is_open(self, conn_id: str) -> bool:
        return False


async def test_an_event_on_an_ended_connection_gets_an_error_ack_not_silence():
    transport = Recorder()
    hub = Hub(EXPRESSCHAT, transport)
    ack = await hub.handle("ended-connection", "send-personal-message", [{"ChatId": "x", "Content": "hi"}])
    assert ack == [
        {
            "ok": False,
            "error": {
                "code": "not_authenticated",
                "message": "The connection has ended; reconnect.",
                "extra": {},
            },
        }
    ]
    assert transport.sent == []  # no `error` event to a connection that is gone


async def test_a_protocol_without_acks_answers_nothing_for_an_ended_connection():
    class Silent(Protocol):
        name = "silent"

        def answer_error(self, conn, event, error) -> Answer:
            return Answer()

    transport = Recorder()
    ack = await Hub(Silent(), transport).handle("gone", "anything", [1, 2])
    assert ack is None and transport.sent == []
