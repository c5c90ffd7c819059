"""What a CHAT SERVER connection keeps: the rooms it joined, and which one its events target."""

from dataclasses import dataclass, field

JOINED_MAX = 100  # rooms one socket may have joined at once


@dataclass
class ChatServerState:
    # conversation id -> room name, in join order. Bus events of a room reach the socket only
    # while it has joined that room (`ChatServer.in_scope`).
    rooms: dict[str, str] = field(default_factory=dict)
    # The room that `typing`, `seen`, `send_message`, `load_more`, `update` and `delete` target:
    # the one joined last (joining a room again makes it current again). The original's "first
    # room wins" was a bug.
    current: str | None = None

    def join(self, conversation_id: str, name: str) -> None:
        self.rooms.pop(conversation_id, None)
        if len(self.rooms) >= JOINED_MAX:
            self.rooms.pop(next(iter(self.rooms)))
        self.rooms[conversation_id] = name
        self.current = conversation_id

    def leave(self, conversation_id: str) -> None:
        self.rooms.pop(conversation_id, None)
        if self.current == conversation_id:
            self.current = next(reversed(self.rooms), None)
