"""The floor: the least a Socket.IO chat server on this stack can do per message.

Bare python-socketio (ASGI, under uvicorn with the product's loop/http/ws options), no Django,
no auth, no checks. A client says who it is in the connect `auth` payload:
`{"pair": "<chat id>", "role": "send" | "recv"}`; receivers join the room named by their chat id.
On `send-personal-message` {ChatId, Content, ClientMessageId} the server INSERTs one row into
its own table (psycopg async pool, autocommit, so one INSERT = one commit), then relays
`receive-personal-message` to the room and acks `{"ok": true, "data": {"Id": ...}}` after the
commit, like the product. `async_handlers=False` as in the product: one client's events are
handled in order, so the relay keeps each sender's order.

Groups (scenario 2): a member connects with `{"group": "<group id>", "user": "<member id>"}` and
joins the room of the group. On `send-group-message` {GroupId, Content, ClientMessageId}: one
INSERT as above, then `receive-group-message` {ChatId, Content, Id, SenderId} emitted once to the
room, skipping the sender (python-socketio encodes the packet once for all recipients), then the
ack. No membership check, no seq allocation, no bus: the least a group relay does.

With FLOOR_REDIS_URL set, rooms span processes through python-socketio's own AsyncRedisManager
(the bare library's answer to scenario 5).

    uvicorn bench.floor_server:app --loop uvloop --http httptools --ws websockets
Environment: FLOOR_DATABASE_URL (required), FLOOR_POOL_SIZE (10), FLOOR_REDIS_URL (optional).
"""

import os
from typing import Any

import socketio
from psycopg_pool import AsyncConnectionPool

DATABASE_URL = os.environ["FLOOR_DATABASE_URL"]
POOL_SIZE = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
REDIS_URL = os.environ.get("FLOOR_REDIS_URL", "")

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_message (
    id bigserial PRIMARY KEY,
    chat_id text NOT NULL,
    client_message_id text,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = "INSERT INTO floor_message (chat_id, client_message_id, content) VALUES (%s, %s, %s) RETURNING id"

pool = AsyncConnectionPool(
    DATABASE_URL, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False, kwargs={"autocommit": True}
)
manager = socketio.AsyncRedisManager(REDIS_URL, channel="floor") if REDIS_URL else None
sio = socketio.AsyncServer(
    async_mode="asgi",
    async_handlers=False,
    cors_allowed_origins=None,
    client_manager=manager,
    logger=False,
    engineio_logger=False,
)


async def startup() -> None:
    await pool.open(wait=True)
    async with pool.connection() as conn:
        await conn.execute(SCHEMA)


async def shutdown() -> None:
    await pool.close()


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    if not isinstance(auth, dict):
        return
    if auth.get("role") == "recv":
        await sio.enter_room(sid, str(auth.get("pair")))
    elif auth.get("group"):
        await sio.save_session(sid, {"user": str(auth.get("user", ""))})
        await sio.enter_room(sid, str(auth["group"]))


@sio.on("send-personal-message")
async def send_personal_message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    chat, content = data["ChatId"], data["Content"]
    async with pool.connection() as conn:
        cursor = await conn.execute(INSERT, (chat, data.get("ClientMessageId"), content))
        (row_id,) = await cursor.fetchone()
    await sio.emit("receive-personal-message", {"ChatId": chat, "Content": content, "Id": row_id}, room=chat)
    return {"ok": True, "data": {"Id": row_id, "ChatId": chat}}


@sio.on("send-group-message")
async def send_group_message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    group, content = data["GroupId"], data["Content"]
    async with pool.connection() as conn:
        cursor = await conn.execute(INSERT, (group, data.get("ClientMessageId"), content))
        (row_id,) = await cursor.fetchone()
    sender = (await sio.get_session(sid)).get("user")
    payload = {"ChatId": group, "Content": content, "Id": row_id, "SenderId": sender}
    await sio.emit("receive-group-message", payload, room=group, skip_sid=sid)
    return {"ok": True, "data": {"Id": row_id, "ChatId": group}}


app = socketio.ASGIApp(sio, socketio_path="socket.io", on_startup=startup, on_shutdown=shutdown)
