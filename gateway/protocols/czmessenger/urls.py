"""CZ Messenger's REST routes under /v1/conversations (spec §5). Room ids are `<id>.<id>`
with ids of `[A-Za-z0-9_-]`."""

from django.urls import path, re_path

from . import rest

app_name = "czmessenger"

ROOM = r"(?P<room_id>[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64})"

urlpatterns = [
    path("v1/conversations/rooms", rest.rooms_collection, name="rooms"),
    path("v1/conversations/rooms/unseen", rest.rooms_unseen, name="rooms-unseen"),
    re_path(rf"^v1/conversations/rooms/{ROOM}/enable\Z", rest.room_enable, name="room-enable"),
    re_path(rf"^v1/conversations/rooms/{ROOM}/pin\Z", rest.room_pin, name="room-pin"),
    re_path(rf"^v1/conversations/rooms/{ROOM}/seen\Z", rest.room_seen, name="room-seen"),
    re_path(rf"^v1/conversations/rooms/{ROOM}/block\Z", rest.room_block, name="room-block"),
    re_path(rf"^v1/conversations/rooms/{ROOM}\Z", rest.room_detail, name="room"),
    path("v1/conversations/messages", rest.messages_list, name="messages"),
    path("v1/conversations/messages/unseen", rest.messages_unseen, name="messages-unseen"),
]
