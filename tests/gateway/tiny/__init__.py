"""A tiny wire protocol, defined in the tests: proof that one folder and one settings line are
enough to serve a new protocol, with nothing changed in the core, the hub or the transports.

Socket.IO, refusal by CONNECT_ERROR ("No token"), the product's access token in `?token=`,
events with several arguments, answers as acks (plain data) or as a same-name `oops` emit:

- `say(chat_id, text)` -> ack `[message id, seq]`; members get `said {chat, from, text}`;
- `peek()` -> ack `[user id, protocol name]`;
- `echo(...)` -> `echoed [...args]` to the caller, then the ack with the same arguments, as they
  reached the handler (bytes included: binary events and acks, both ways, end to end).
"""

from typing import Any

from chatproject.core.errors import ApplicationError, ErrorCode
from gateway import actions
from gateway.audience import ACTOR, Emit
from gateway.auth import Credentials
from gateway.connection import Connection
from gateway.protocol import Answer, Outcome, Protocol, Refusal
from gateway.transports.handshake import Handshake


async def say(conn: Connection, args: list[Any]) -> Outcome:
    """Called when the client posts: `say(chat_id, text)`."""
    if len(args) != 2 or not all(isinstance(a, str) for a in args):
        raise ApplicationError(ErrorCode.INVALID, "say takes a chat id and a text.")
    sent = await actions.send(conn, conversation_id=args[0], content=args[1])
    return Outcome(data=[sent.message.public_id, sent.message.seq])


async def peek(conn: Connection, args: list[Any]) -> Outcome:
    """Called to ask who this connection is."""
    return Outcome(data=[conn.user_id, conn.protocol])


async def echo(conn: Connection, args: list[Any]) -> Outcome:
    """Called to have the arguments sent back, unchanged: as an event, then as the ack."""
    return Outcome([("echoed", list(args))], list(args))


class Tiny(Protocol):
    name = "tiny"
    handlers = {"say": say, "peek": peek, "echo": echo}

    def credentials(self, handshake: Handshake) -> Credentials:
        return Credentials(handshake.query.get("token") or None, None, renewable=False)

    def refusal(self, error: ApplicationError) -> Refusal:
        return Refusal(connect_error="No token" if error.code == ErrorCode.NOT_AUTHENTICATED else "Bad token")

    def greeting(self, conn: Connection, snapshot) -> list[tuple[str, Any]]:
        return [("hello", {"you": conn.user_id, "chats": len(snapshot.summaries)})]

    def answer(self, conn: Connection, event: str, outcome: Outcome) -> Answer:
        return Answer(outcome.emits, outcome.data)

    def answer_error(self, conn: Connection | None, event: str, error: ApplicationError) -> Answer:
        return Answer([("oops", {"event": event, "code": str(error.code)})] if conn else [])

    def render(self, event: dict[str, Any]) -> list[Emit]:
        if event.get("type") != "message.created":
            return []
        message = event["message"]
        said = {"chat": event["conversation"]["id"], "from": message["sender_id"], "text": message["content"]}
        return [Emit("said", said, skip=(ACTOR,))]


PROTOCOL = Tiny()
