"""The room-token rooms rendering needs, kept per process (`gateway.rooms.RoomDirectory`)."""

from __future__ import annotations

from gateway.rooms import RoomDirectory

from .store.selectors import RoomInfo, room_info_for_conversation, room_infos_of_user

rooms: RoomDirectory[RoomInfo] = RoomDirectory(
    of_conversation=room_info_for_conversation,
    of_user=room_infos_of_user,
    parties=lambda info: (info.customer_id, info.vendor_id),
)
remember = rooms.remember
room_of_conversation = rooms.room_of_conversation
rooms_of_user = rooms.rooms_of_user
clear = rooms.clear
