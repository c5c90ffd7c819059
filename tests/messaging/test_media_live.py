"""Media uploads against a live server process: real multipart uploads, the file served with byte
ranges and safe headers, the body limit answering before a body is read, media messages over
ExpressChat Socket.IO (live and in history), a deleted message's file gone, and the web client's
cookie (with its CSRF token) on REST."""

import asyncio
import io
import itertools
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from django.conf import settings
from PIL import Image

from chatproject.core.body_limit import body_limit_for
from tests.realtime.clients import connect_greeted, ok

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def png(width: int = 3, height: int = 2) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def bearer(chat_user) -> dict[str, str]:
    return {"Authorization": f"Bearer {chat_user.access}"}


def form(data: bytes, filename: str, content_type: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=filename, content_type=content_type)
    return body


async def upload(server, chat_user, data: bytes, filename: str = "dot.png", content_type: str = "image/png"):
    async with (
        aiohttp.ClientSession(base_url=server.url) as http,
        http.post("/api/uploads/", data=form(data, filename, content_type), headers=bearer(chat_user)) as r,
    ):
        assert r.status == 201, (r.status, await r.text())
        return await r.json()


def local_path(url: str) -> str:
    """The path of a file URL: the URL is absolute on PUBLIC_BASE_URL, and the live server
    listens on a port of its own."""
    return urlsplit(url).path


def stored_file(server, url: str):
    """Where the live server keeps the file of `url` (its MEDIA_ROOT, next to its log)."""
    return server.log.parent / "media" / local_path(url).removeprefix(settings.MEDIA_URL)


def refused(ack) -> str:
    assert ack["ok"] is False, ack
    return ack["error"]["code"]


async def raw_exchange(
    server, head: bytes, body: Iterable[bytes] = (), timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 exchange on a plain socket: send `head` and then `body` while reading the
    response (Content-Length framed), so an answer that comes before the body is heard at once.

    Not aiohttp or asyncio streams here: when the server answers 413 and hangs up mid-body, their
    failed write can close the connection before the response already received is read (seen
    as aiohttp's "Can not write request body" in some runs). Separate socket reads and writes
    keep the answer."""
    loop = asyncio.get_running_loop()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setblocking(False)

        async def pump() -> None:
            try:
                await loop.sock_sendall(sock, head)
                for chunk in body:
                    await loop.sock_sendall(sock, chunk)
            except OSError:  # the server answered and hung up mid-body
                pass

        async def response() -> bytes:
            data = b""
            while b"\r\n\r\n" not in data or len(data) < framed_length(data):
                try:
                    chunk = await loop.sock_recv(sock, 65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            return data

        sending = asyncio.create_task(pump())
        try:
            data = await asyncio.wait_for(response(), timeout)
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)  # done with the socket first
    raw_head, _, content = data.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, content


def framed_length(data: bytes) -> int:
    """The length of the whole response whose head `data` holds (head plus Content-Length)."""
    raw_head, _, _ = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length:\s*(\d+)", raw_head)
    return len(raw_head) + 4 + (int(found.group(1)) if found else 0)


def upload_head(chat_user, **headers: str) -> bytes:
    lines = {
        "Host": "127.0.0.1",
        "Authorization": f"Bearer {chat_user.access}",
        "Content-Type": "multipart/form-data; boundary=xyz",
    } | headers
    return (
        "POST /api/uploads/ HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.items()) + "\r\n"
    ).encode()


# --- serving -----------------------------------------------------------------------------------


async def test_uploaded_image_is_served_with_ranges_etag_and_safe_headers(live_server_proc, make_user):
    alice = make_user("Alice")
    image = png(3, 2)
    uploaded = await upload(live_server_proc, alice, image, filename="dot.png")

    assert uploaded["id"]
    assert (uploaded["kind"], uploaded["content_type"]) == ("image", "image/png")
    assert (uploaded["width"], uploaded["height"], uploaded["size"]) == (3, 2, len(image))
    assert uploaded["name"] == "dot.png"
    assert uploaded["url"].startswith(settings.PUBLIC_BASE_URL + settings.MEDIA_URL), uploaded["url"]
    assert uploaded["url"].endswith(".png")
    path, size, etag = local_path(uploaded["url"]), len(image), f'"{uploaded["id"]}"'

    async with aiohttp.ClientSession(base_url=live_server_proc.url) as http:
        # The whole file, no login: the URL is the capability.
        async with http.get(path) as r:
            assert r.status == 200
            assert await r.read() == image
            assert r.headers["Content-Type"] == "image/png"
            assert r.headers["Content-Length"] == str(size)
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert "sandbox" in r.headers["Content-Security-Policy"]
            assert r.headers["Content-Disposition"].startswith("inline")
            assert r.headers["Accept-Ranges"] == "bytes"
            assert r.headers["ETag"] == etag

        async with http.head(path) as r:
            assert r.status == 200
            assert await r.read() == b""
            assert (r.headers["Content-Length"], r.headers["ETag"]) == (str(size), etag)

        async with http.get(path, headers={"Range": "bytes=0-3"}) as r:
            assert r.status == 206
            assert await r.read() == image[:4]
            assert r.headers["Content-Range"] == f"bytes 0-3/{size}"
            assert r.headers["Content-Length"] == "4"

        async with http.get(path, headers={"Range": "bytes=-4"}) as r:
            assert r.status == 206
            assert await r.read() == image[-4:]
            assert r.headers["Content-Range"] == f"bytes {size - 4}-{size - 1}/{size}"

        async with http.get(path, headers={"Range": "bytes=99999-"}) as r:
            assert r.status == 416
            assert r.headers["Content-Range"] == f"bytes */{size}"

        async with http.get(path, headers={"If-None-Match": etag}) as r:
            assert r.status == 304
            assert await r.read() == b""
            assert r.headers["ETag"] == etag
        # A list of tags, weak ones included, also matches; another tag does not.
        async with http.get(path, headers={"If-None-Match": f'"other", W/{etag}'}) as r:
            assert r.status == 304
        async with http.get(path, headers={"If-None-Match": '"other"'}) as r:
            assert r.status == 200


async def test_pdf_and_text_are_served_as_downloads_and_unknown_paths_are_404(live_server_proc, make_user):
    alice = make_user("Alice")
    uploaded = await upload(live_server_proc, alice, PDF, filename="report.pdf", content_type="text/html")
    assert (uploaded["kind"], uploaded["content_type"], uploaded["name"]) == (
        "file",
        "application/pdf",
        "report.pdf",
    )
    assert (uploaded["width"], uploaded["height"]) == (None, None)

    async with aiohttp.ClientSession(base_url=live_server_proc.url) as http:
        async with http.get(local_path(uploaded["url"])) as r:
            assert r.status == 200
            assert await r.read() == PDF
            assert r.headers["Content-Type"] == "application/pdf"
            assert r.headers["Content-Disposition"].startswith("attachment")
            assert "report.pdf" in r.headers["Content-Disposition"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"

        # A page is stored as the text it is, and never served as one.
        page = b"<html><script>alert(1)</script></html>\n"
        text = await upload(live_server_proc, alice, page, filename="page.html", content_type="text/html")
        assert (text["kind"], text["content_type"], text["name"]) == ("file", "text/plain", "page.html.txt")
        assert text["url"].endswith(".txt")
        async with http.get(local_path(text["url"])) as r:
            assert r.status == 200
            assert await r.read() == page
            assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert r.headers["Content-Disposition"].startswith("attachment")
            assert "sandbox" in r.headers["Content-Security-Policy"]

        for unknown in (
            f"{settings.MEDIA_URL}uploads/2026/01/{'0' * 32}/nothing.png",
            local_path(uploaded["url"]) + ".png",
        ):
            async with http.get(unknown) as r:
                assert r.status == 404, unknown


# --- body limit --------------------------------------------------------------------------------


async def test_upload_declaring_too_long_a_body_is_refused_before_it_is_sent(live_server_proc, make_user):
    alice = make_user("Alice")
    limit = body_limit_for("/api/uploads/")
    assert limit == settings.CHAT["UPLOAD_MAX_BYTES"] + 64 * 1024

    started = time.monotonic()
    # Only the head goes out: any answer shows the server did not wait for the body.
    status, headers, content = await raw_exchange(
        live_server_proc, upload_head(alice, **{"Content-Length": str(limit + 1)}), timeout=5
    )

    assert time.monotonic() - started < 2
    assert status == 413
    assert headers["content-type"] == "application/json"
    # The same refusal the upload service gives: the file limit, not the body's.
    maximum = settings.CHAT["UPLOAD_MAX_BYTES"]
    assert json.loads(content) == {
        "code": "payload_too_large",
        "message": f"The file is larger than {maximum} bytes.",
        "extra": {"field": "file", "max_bytes": maximum},
    }


async def test_chunked_upload_is_cut_off_once_it_passes_the_limit(live_server_proc, make_user):
    alice = make_user("Alice")
    limit = body_limit_for("/api/uploads/")
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        zeros = b"\0" * (256 * 1024)
        for data in itertools.chain([part], itertools.repeat(zeros)):
            if sent > limit * 4:  # far past the limit: the server should have hung up long ago
                return
            sent += len(data)
            yield b"%x\r\n%s\r\n" % (len(data), data)

    status, _headers, content = await raw_exchange(
        live_server_proc, upload_head(alice, **{"Transfer-Encoding": "chunked"}), body()
    )

    assert status == 413
    assert json.loads(content)["code"] == "payload_too_large"
    # Past the limit, what the sockets' buffers held, and no more.
    assert limit < sent < limit * 2


async def test_chunked_upload_under_the_limit_is_stored(live_server_proc, make_user):
    # The body limit lets a body without Content-Length through up to the limit (docs/protocol.md,
    # uploads: "Content-Length (or streamed length)"), so such an upload must work too.
    alice = make_user("Alice")
    image = png(3, 2)
    multipart = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="dot.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + image + b"\r\n--xyz--\r\n"
    )
    headers = bearer(alice) | {"Content-Type": "multipart/form-data; boundary=xyz"}

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(multipart), 16):
            yield multipart[start : start + 16]

    async with aiohttp.ClientSession(base_url=live_server_proc.url) as http:
        # The same bytes with a Content-Length: the body itself is a good upload.
        async with http.post("/api/uploads/", data=multipart, headers=headers) as r:
            assert r.status == 201, await r.text()
        async with http.post("/api/uploads/", data=streamed(), headers=headers) as r:
            assert r.request_info.headers.get("Transfer-Encoding") == "chunked"
            assert r.status == 201, await r.text()
            uploaded = await r.json()
    assert (uploaded["kind"], uploaded["size"], uploaded["width"]) == ("image", len(image), 3)
    assert stored_file(live_server_proc, uploaded["url"]).read_bytes() == image


async def test_file_over_the_upload_limit_within_the_framing_margin_is_refused(live_server_proc, make_user):
    # The wrapper lets UPLOAD_MAX_BYTES plus 64 KiB of framing through; the exact limit on the
    # file itself is the service's.
    alice = make_user("Alice")
    maximum = settings.CHAT["UPLOAD_MAX_BYTES"]
    prefix = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n"
    )
    suffix = b"\r\n--xyz--\r\n"
    content = PDF + b"\0" * (maximum + 1 - len(PDF))
    length = len(prefix) + len(content) + len(suffix)
    assert length <= body_limit_for("/api/uploads/")

    status, _headers, answer = await raw_exchange(
        live_server_proc,
        upload_head(alice, **{"Content-Length": str(length)}),
        [prefix, content, suffix],
    )

    assert status == 413
    assert json.loads(answer) == {
        "code": "payload_too_large",
        "message": f"The file is larger than {maximum} bytes.",
        "extra": {"field": "file", "max_bytes": maximum},
    }


async def test_json_endpoint_refuses_a_megabyte_body(live_server_proc, make_user):
    alice = make_user("Alice")
    payload = b'{"positions": {}, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    head = (
        "POST /api/sync/ HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {alice.access}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "\r\n"
    ).encode()

    status, _headers, content = await raw_exchange(live_server_proc, head, [payload])

    assert status == 413
    refusal = json.loads(content)
    assert refusal["code"] == "payload_too_large"
    assert refusal["extra"]["max_bytes"] == body_limit_for("/api/sync/") < len(payload)


# --- media messages over ExpressChat -------------------------------------------------------------


def attachment_wire(uploaded: dict) -> dict:
    return {
        "Id": uploaded["id"],
        "Kind": uploaded["kind"],
        "Url": uploaded["url"],
        "Type": uploaded["content_type"],
        "Size": uploaded["size"],
        "Name": uploaded["name"],
        "Width": uploaded["width"],
        "Height": uploaded["height"],
    }


async def test_image_messages_reach_the_partner_live_and_in_history(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    captioned = await upload(live_server_proc, alice, png(3, 2), filename="look.png")
    bare = await upload(live_server_proc, alice, png(4, 5), filename="bare.png")
    spare = await upload(live_server_proc, alice, png(1, 1), filename="spare.png")
    a, b = [await connect_greeted(live_server_proc, u) for u in (alice, bob)]
    try:
        chat_id = ok(await a.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]

        first = ok(
            await a.call(
                "send-personal-message",
                {"ChatId": chat_id, "Content": "look", "AttachmentId": captioned["id"]},
            )
        )
        got = await b.next("receive-personal-message")
        assert (got["ChatId"], got["Id"], got["Sender"]) == (chat_id, first["Id"], "Alice")
        assert got["Content"] == f"look\n{captioned['url']}"
        assert (got["Kind"], got["Caption"]) == ("image", "look")
        assert got["Attachment"] == attachment_wire(captioned)

        second = ok(await a.call("send-personal-message", {"ChatId": chat_id, "AttachmentId": bare["id"]}))
        got = await b.next("receive-personal-message")
        assert got["Id"] == second["Id"]
        assert got["Content"] == bare["url"]
        assert (got["Kind"], got["Caption"]) == ("image", "")
        assert got["Attachment"] == attachment_wire(bare)
        assert (got["Attachment"]["Width"], got["Attachment"]["Height"]) == (4, 5)
        await a.none("receive-personal-message", wait=0.2)

        # History serves the same to both members.
        for client in (a, b):
            await client.call("fetch-personal-chat", {"ChatId": chat_id})
            newest, oldest = (await client.next("personal-chat"))["Messages"][:2]
            assert (newest["_id"], newest["Content"], newest["Kind"]) == (second["Id"], bare["url"], "image")
            assert newest["Attachment"] == attachment_wire(bare)
            assert (oldest["_id"], oldest["Content"]) == (first["Id"], f"look\n{captioned['url']}")
            assert (oldest["Kind"], oldest["Caption"]) == ("image", "look")
            assert oldest["Attachment"] == attachment_wire(captioned)

        # An upload goes into one message only.
        again = await a.call(
            "send-personal-message", {"ChatId": chat_id, "Content": "again", "AttachmentId": captioned["id"]}
        )
        assert refused(again) == "conflict"
        # Someone else's upload is as unknown as one that does not exist.
        theirs = await b.call("send-personal-message", {"ChatId": chat_id, "AttachmentId": spare["id"]})
        assert refused(theirs) == "not_found"
        # The kind asked for must match the file's.
        wrong = await a.call(
            "send-personal-message", {"ChatId": chat_id, "AttachmentId": spare["id"], "Kind": "video"}
        )
        assert refused(wrong) == "invalid"
        await b.none("receive-personal-message", wait=0.2)

        # Refused sends took nothing; of two sends racing for one upload, one wins.
        a2 = await connect_greeted(live_server_proc, alice)
        try:
            acks = await asyncio.gather(
                a.call("send-personal-message", {"ChatId": chat_id, "AttachmentId": spare["id"]}),
                a2.call("send-personal-message", {"ChatId": chat_id, "AttachmentId": spare["id"]}),
            )
        finally:
            await a2.close()
        assert sorted(ack["ok"] for ack in acks) == [False, True], acks
        (lost,) = [ack for ack in acks if not ack["ok"]]
        assert refused(lost) == "conflict"
        (won,) = [ack["data"] for ack in acks if ack["ok"]]
        got = await b.next("receive-personal-message")
        assert (got["Id"], got["Attachment"]) == (won["Id"], attachment_wire(spare))
        await b.none("receive-personal-message", wait=0.2)
    finally:
        for client in (a, b):
            await client.close()


async def test_deleted_media_message_loses_its_file(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    image = png(3, 2)
    uploaded = await upload(live_server_proc, alice, image)
    path = local_path(uploaded["url"])
    assert stored_file(live_server_proc, uploaded["url"]).read_bytes() == image
    a, b = [await connect_greeted(live_server_proc, u) for u in (alice, bob)]
    try:
        chat_id = ok(await a.call("create-personal-chat", {"Receiver": bob.id}))["ChatId"]
        sent = ok(
            await a.call(
                "send-personal-message",
                {"ChatId": chat_id, "Content": "look", "AttachmentId": uploaded["id"]},
            )
        )
        await b.next("receive-personal-message")
        async with aiohttp.ClientSession(base_url=live_server_proc.url) as http:
            async with http.get(path) as r:
                assert r.status == 200

            ok(await a.call("delete-message", {"ChatId": chat_id, "Id": sent["Id"]}))
            deleted = await b.next("message-deleted")
            assert (deleted["Id"], deleted["Hidden"]) == (sent["Id"], False)

            async with http.get(path) as r:
                assert r.status == 404
            async with http.get(path, headers={"Range": "bytes=0-3"}) as r:
                assert r.status == 404
            async with http.get(path, headers={"If-None-Match": f'"{uploaded["id"]}"'}) as r:
                assert r.status == 404
        assert not stored_file(live_server_proc, uploaded["url"]).exists()

        await b.call("fetch-personal-chat", {"ChatId": chat_id})
        (message,) = [m for m in (await b.next("personal-chat"))["Messages"] if m["_id"] == sent["Id"]]
        assert (message["Content"], message["Attachment"], message["Deleted"]) == ("", None, True)
        assert "Caption" not in message
        assert uploaded["url"] not in str(message)
    finally:
        for client in (a, b):
            await client.close()


# --- the web client's cookie on REST ---------------------------------------------------------------


async def test_cookie_login_reaches_rest_and_unsafe_methods_need_the_csrf_token(live_server_proc, make_user):
    make_user("Alice", email="alice.cookie@example.com")
    # unsafe=True: the live server is an IP address, whose cookies aiohttp drops by default.
    async with aiohttp.ClientSession(
        base_url=live_server_proc.url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        async with http.post(
            "/login", json={"email": "alice.cookie@example.com", "password": "correct horse 42"}
        ) as r:
            assert r.status == 200
            assert (await r.json())["success"] == 1
        assert "access_token" in {cookie.key for cookie in http.cookie_jar}

        async with http.get("/api/conversations/") as r:
            assert r.status == 200, await r.text()

        async with http.post("/api/uploads/", data=form(png(), "dot.png", "image/png")) as r:
            assert r.status == 403
            refusal = await r.json()
        assert refusal["code"] == "permission_denied"
        assert "CSRF" in refusal["message"]

        async with http.get("/") as r:
            assert r.status == 200
            page = await r.text()
        token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
        assert "csrftoken" in {cookie.key for cookie in http.cookie_jar}

        async with http.post(
            "/api/uploads/", data=form(png(), "dot.png", "image/png"), headers={"X-CSRFToken": token}
        ) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["kind"] == "image"

    # Without the cookie nothing is accepted.
    async with (
        aiohttp.ClientSession(base_url=live_server_proc.url) as http,
        http.get("/api/conversations/") as r,
    ):
        assert r.status == 401


async def test_a_chunked_upload_larger_than_the_memory_spool_is_stored_whole(live_server_proc, make_user):
    # Past 1 MiB the body limit's spool is a file on disk (written off the event loop).
    alice = make_user("Alice")
    document = PDF + b"%" + bytes(range(256)) * 6 * 1024  # ~1.5 MiB
    multipart = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n" + document + b"\r\n--xyz--\r\n"
    )

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(multipart), 64 * 1024):
            yield multipart[start : start + 64 * 1024]

    headers = bearer(alice) | {"Content-Type": "multipart/form-data; boundary=xyz"}
    async with aiohttp.ClientSession(base_url=live_server_proc.url) as http:
        async with http.post("/api/uploads/", data=streamed(), headers=headers) as r:
            assert r.request_info.headers.get("Transfer-Encoding") == "chunked"
            assert r.status == 201, await r.text()
            uploaded = await r.json()
    assert (uploaded["content_type"], uploaded["size"]) == ("application/pdf", len(document))
    assert stored_file(live_server_proc, uploaded["url"]).read_bytes() == document
