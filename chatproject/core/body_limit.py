"""An ASGI wrapper that bounds HTTP request bodies before Django reads them.

Django under ASGI reads a whole request body (into memory, then a temporary file) before any
view runs, and checks its size limits only afterwards, for some bodies. So a client could make
each process spool gigabytes to disk. This wrapper answers 413 at once when Content-Length is
over the limit, and cuts off a body without one (chunked) as soon as it passes the limit:
Django sees a disconnect and stops, and the client gets the 413.

A chunked body within the limit is gathered here first (in memory up to 1 MiB, then in a
temporary file) and handed on with its Content-Length: Django's multipart parser takes a request
without one for an empty form, so a streamed upload would otherwise lose its file.

Uploads (POST /api/uploads/) may carry CHAT UPLOAD_MAX_BYTES plus the multipart framing; every
other request at most DATA_UPLOAD_MAX_MEMORY_SIZE plus the same margin (Django enforces the
exact limit for those itself).
"""

import asyncio
import json
import tempfile

from django.conf import settings

MULTIPART_MARGIN = 64 * 1024  # boundaries, part headers and the other form fields
SPOOL_IN_MEMORY = 1024 * 1024
REPLAY_CHUNK = 256 * 1024


UPLOADS_PATH = "/api/uploads/"


def body_limit_for(path: str) -> int | None:
    """The most bytes a request body to `path` may have; None: no limit (Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE = None)."""
    if path.startswith(UPLOADS_PATH):
        return settings.CHAT["UPLOAD_MAX_BYTES"] + MULTIPART_MARGIN
    if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is None:
        return None
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + MULTIPART_MARGIN


def _refusal(path: str, limit: int) -> dict:
    """The 413 body: for uploads the same as the upload service's own (the file limit, field
    `file`), so a client shows one message whichever check caught the file."""
    if path.startswith(UPLOADS_PATH):
        maximum = settings.CHAT["UPLOAD_MAX_BYTES"]
        return {
            "code": "payload_too_large",
            "message": f"The file is larger than {maximum} bytes.",
            "extra": {"field": "file", "max_bytes": maximum},
        }
    return {"code": "payload_too_large", "message": "Request body too large.", "extra": {"max_bytes": limit}}


async def _refuse(send, path: str, limit: int) -> None:
    body = json.dumps(_refusal(path, limit)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit_for(scope.get("path", ""))
        if limit is None:
            return await self.app(scope, receive, send)
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    return await _refuse(send, scope.get("path", ""), limit)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            return await self._gathered(scope, receive, send, limit)
        received = 0
        exceeded = False
        started = False

        async def bounded_receive():
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, bounded_receive, tracked_send)
        if exceeded and not started:
            await _refuse(send, scope.get("path", ""), limit)

    async def _gathered(self, scope, receive, send, limit: int) -> None:
        """A chunked body: read it whole (refusing it past the limit), then pass it on with its
        length, replayed in chunks."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        try:
            total = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body = message.get("body", b"")
                total += len(body)
                if total > limit:
                    return await _refuse(send, scope.get("path", ""), limit)
                if total > SPOOL_IN_MEMORY:  # on disk by now: not on the event loop
                    await asyncio.to_thread(spool.write, body)
                else:
                    spool.write(body)
                if not message.get("more_body", False):
                    break
            spool.seek(0)
            headers = [(n, v) for n, v in scope["headers"] if n != b"transfer-encoding"]
            scope = dict(scope, headers=[*headers, (b"content-length", str(total).encode())])
            handed_over = False

            async def replay():
                nonlocal handed_over
                if handed_over:
                    return await receive()  # the body is through: only a disconnect is left
                chunk = (
                    await asyncio.to_thread(spool.read, REPLAY_CHUNK)
                    if total > SPOOL_IN_MEMORY
                    else spool.read(REPLAY_CHUNK)
                )
                handed_over = spool.tell() >= total
                return {"type": "http.request", "body": chunk, "more_body": not handed_over}

            await self.app(scope, replay, send)
        finally:
            spool.close()
