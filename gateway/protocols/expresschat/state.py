"""What ExpressChat keeps per connection, and what a client may opt in to."""

from dataclasses import dataclass

# A client that understands the product's extensions an original client would misread (today:
# group system messages, which an original page shows as if the actor had typed them) asks for
# them in its handshake: `extensions=1` in the query, or `{"extensions": true}` in the Socket.IO
# auth payload (docs/protocol.md §16).
EXTENSIONS = "extensions"


@dataclass
class ExpressChatState:
    self_conversation_id: str | None = None  # the notes-to-self chat, once looked up
