"""Serving a stored file over HTTP with single byte ranges (video seeking, resumed downloads)
and the headers that keep a user's file from ever acting as a page of this site."""

from collections.abc import AsyncIterator
from typing import IO

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

CHUNK = 256 * 1024

# A file opened directly in a tab may show itself, but never run anything or load anything.
FILE_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"


UNSATISFIABLE = "unsatisfiable"


def _byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) of a single `bytes=` range, clipped to the file; UNSATISFIABLE for a
    well-formed range that starts past the end; None for anything to ignore (malformed, other
    units, several ranges): RFC 9110 answers those with the whole file."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":  # the last N bytes
            suffix = int(last_text)
            if suffix <= 0:
                return UNSATISFIABLE if suffix == 0 else None
            return max(size - suffix, 0), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first < 0 or (last_text and last < first):
        return None
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


async def _chunks(handle: IO[bytes], length: int) -> AsyncIterator[bytes]:
    """The bytes, read in a worker thread chunk by chunk. An async iterator: Django under ASGI
    would read a synchronous one into memory whole before sending the first byte."""
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while length > 0:
            data = await read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()


def ranged_file_response(
    request: HttpRequest,
    handle: IO[bytes],
    *,
    size: int,
    content_type: str,
    filename: str,
    inline: bool,
    etag: str,
) -> HttpResponse:
    """200 with the whole file, 206 with one requested range, 416 for a range outside it,
    304 when the client's copy (`If-None-Match`) is current. Stored files never change, so
    the ETag is the file's id."""
    quoted_etag = f'"{etag}"'
    # If-None-Match may list several tags, weak ones (W/"...") included, or "*".
    known = {tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")}
    if quoted_etag in known or "*" in known:
        handle.close()
        response = HttpResponse(status=304)
    else:
        requested = request.headers.get("Range")
        span = _byte_range(requested, size) if requested else None
        if span == UNSATISFIABLE:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
        elif span is not None:
            first, last = span
            handle.seek(first)
            response = StreamingHttpResponse(
                _chunks(handle, last - first + 1), status=206, content_type=content_type
            )
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
            response["Content-Length"] = str(last - first + 1)
        else:
            response = StreamingHttpResponse(_chunks(handle, size), content_type=content_type)
            response["Content-Length"] = str(size)
        response["Content-Disposition"] = content_disposition_header(not inline, filename)
    response["ETag"] = quoted_etag
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    return response
