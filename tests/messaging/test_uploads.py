"""Uploads and media messages: type recognition from the bytes, image checks, names, the upload
API and its limits, sending media messages (REST and the ExpressChat rendering), and what
deleting, hiding and purging do to the stored files."""

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from chatproject.core.errors import ApplicationError, ErrorCode
from gateway.protocols import expresschat
from gateway.protocols.expresschat.rest import ACCESS_COOKIE
from messaging import events, media, selectors, services, uploads
from messaging.models import Attachment, Message

from .conftest import direct, group, send

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """A storage folder of each test's own (the storage is rebuilt when the setting changes)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64
OGG = b"OggS\x00\x02" + b"\x00" * 100
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2mp41" + b"\x00" * 64
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A mp42isom" + b"\x00" * 64
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64
ZIP = b"PK\x03\x04\x14\x00\x00\x00" + b"\x00" * 64
HTML = b"<!doctype html><script>alert(document.cookie)</script>"


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (3, 2), exif_orientation: int | None = None
) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    options = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif.tobytes()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def upload(chat_user, data: bytes, name: str = "file.bin", declared: str = "") -> Attachment:
    return uploads.upload_create(
        user=chat_user.user, file=io.BytesIO(data), name=name, size=len(data), declared_type=declared
    )


def upload_any(data: bytes) -> Attachment:
    from accounts.models import User

    user = User.objects.create_user("any@example.com", "correct horse 42", display_name="Any")
    return uploads.upload_create(user=user, file=io.BytesIO(data), name="any", size=len(data))


def refused(code: ErrorCode, call) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call()
    assert caught.value.code == code, caught.value.as_dict()
    return caught.value


def stored(attachment: Attachment) -> bool:
    return default_storage.exists(attachment.file.name)


def stored_files() -> list[Path]:
    root = Path(default_storage.location)
    return [p for p in root.rglob("*") if p.is_file()]


# --- recognising types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "declared", "name", "mime"),
    [
        (image_bytes("PNG"), "", "a.png", "image/png"),
        (image_bytes("JPEG"), "", "a.jpg", "image/jpeg"),
        (image_bytes("GIF"), "", "a.gif", "image/gif"),
        (image_bytes("WEBP"), "", "a.webp", "image/webp"),
        (PDF, "", "doc.pdf", "application/pdf"),
        (MP3, "", "song.mp3", "audio/mpeg"),
        (OGG, "", "voice.ogg", "audio/ogg"),
        (WAV, "", "a.wav", "audio/wav"),
        (MP4, "", "clip.mp4", "video/mp4"),
        (M4A, "", "a.m4a", "audio/mp4"),
        (MP4, "audio/mp4", "voice.mp4", "audio/mp4"),  # sound only, as the client says
        (WEBM, "", "clip.webm", "video/webm"),
        (WEBM, "audio/webm;codecs=opus", "voice.webm", "audio/webm"),
        (ZIP, "", "a.zip", "application/zip"),
        (ZIP, "", "report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("héllo, wörld\n\ttabs\r\n".encode(), "", "notes.md", "text/plain"),
        # The name and the declared type never make bytes something else.
        (image_bytes("PNG"), "application/pdf", "x.pdf", "image/png"),
        (PDF, "image/png", "x.png", "application/pdf"),
    ],
)
def test_the_type_comes_from_the_bytes(data, declared, name, mime):
    assert media.identify(io.BytesIO(data), declared=declared, name=name).mime == mime


@pytest.mark.parametrize(
    "data",
    [
        HTML.replace(b"<", b"\x00<"),  # NUL: not text
        b"\x7fELF\x02\x01\x01" + b"\x00" * 60,  # an executable
        b"\xff\xfe\x00\x00garbage",  # not UTF-8
        b"text with a bell \x07",  # control characters
        b"\xff\xf1\x50\x80" + b"\x00" * 32,  # AAC in ADTS: not a type we list
        b"\xff\xfb\x00\x00" + b"\x00" * 32,  # MPEG sync bits, but a "free" bitrate: noise
    ],
)
def test_unknown_content_is_not_accepted_whatever_its_name(data):
    with pytest.raises(media.UnsupportedType):
        media.identify(io.BytesIO(data), declared="image/png", name="photo.png")


def test_html_is_plain_text_never_a_page(alice):
    attachment = upload(alice, HTML, "index.html", "text/html")
    assert (attachment.content_type, attachment.kind) == ("text/plain", "file")
    assert attachment.name == "index.html.txt"
    assert attachment.file.name.endswith("/indexhtml.txt")


def test_allowed_types_from_settings_narrow_what_is_accepted(settings, alice):
    settings.CHAT = {**settings.CHAT, "UPLOAD_ALLOWED_TYPES": ["image/png"]}
    upload(alice, image_bytes("PNG"), "a.png")
    error = refused(ErrorCode.UNSUPPORTED_MEDIA_TYPE, lambda: upload(alice, PDF, "doc.pdf"))
    assert error.extra == {"field": "file", "allowed_types": ["image/png"]}


# --- images ---------------------------------------------------------------------------------


def test_image_dimensions_are_as_displayed(alice):
    png = upload(alice, image_bytes("PNG", (30, 20)), "a.png")
    assert (png.kind, png.width, png.height) == ("image", 30, 20)
    # EXIF orientation 6: the camera held sideways, viewers show it 20 wide and 30 high.
    turned = upload(alice, image_bytes("JPEG", (30, 20), exif_orientation=6), "b.jpg")
    assert (turned.width, turned.height) == (20, 30)


def test_photos_are_stored_without_location_and_device_but_keep_their_orientation(alice):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turned a quarter
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buffer, "JPEG", exif=exif.tobytes(), comment=b"secret")
    original = buffer.getvalue()
    assert b"PhoneMaker" in original and b"secret" in original

    attachment = upload(alice, original, "photo.jpg")
    with default_storage.open(attachment.file.name) as handle:
        kept = handle.read()
    assert b"PhoneMaker" not in kept and b"secret" not in kept
    assert attachment.size == len(kept) < len(original)
    with Image.open(io.BytesIO(kept)) as image, Image.open(io.BytesIO(original)) as before:
        assert dict(image.getexif()) == {0x0112: 6}
        assert image.tobytes() == before.tobytes()  # the picture itself is untouched
    assert (attachment.width, attachment.height) == (30, 40)


@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO file")
def test_progressive_photos_lose_what_phones_append_after_the_picture_and_keep_colour_profiles(alice):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    picture = Image.new("RGB", (64, 48), (200, 90, 20))
    picture.save(buffer, "JPEG", progressive=True, exif=exif.tobytes(), icc_profile=profile)
    # A "motion photo": a second JPEG (with its own EXIF) and a video after the end marker, and
    # an MPF index (APP2) pointing at it.
    mpf = b"MPF\x00" + b"\x00" * 12
    main = buffer.getvalue()
    main = main[:2] + b"\xff\xe2" + (len(mpf) + 2).to_bytes(2, "big") + mpf + main[2:]
    appended = main + b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00GPS-SECRET" + b"ftypmp42 MotionVideo"
    attachment = upload(alice, appended, "motion.jpg")
    with default_storage.open(attachment.file.name) as handle:
        kept = handle.read()
    assert b"PhoneMaker" not in kept and b"GPS-SECRET" not in kept and b"MotionVideo" not in kept
    assert b"MPF\x00" not in kept and kept.endswith(b"\xff\xd9")
    with Image.open(io.BytesIO(kept)) as image, Image.open(io.BytesIO(buffer.getvalue())) as before:
        assert image.info.get("icc_profile") == profile  # colours stay right
        assert image.tobytes() == before.tobytes()


def test_jpeg_segments_that_do_not_parse_are_not_rewritten():
    assert media.jpeg_without_metadata(b"\xff\xd8\xff\xe1\x00") is None
    assert media.jpeg_without_metadata(b"\xff\xd8\x00\x00\x00\x00") is None
    assert media.jpeg_without_metadata(b"\x89PNG") is None
    png = image_bytes("PNG")
    assert default_storage.open(upload_any(png).file.name).read() == png  # other types as sent


def test_a_truncated_or_fake_image_is_refused_and_nothing_is_stored(alice):
    before = stored_files()
    png = image_bytes("PNG", (50, 50))
    refused(ErrorCode.INVALID, lambda: upload(alice, png[:40], "cut.png"))
    refused(ErrorCode.INVALID, lambda: upload(alice, b"\x89PNG\r\n\x1a\n" + b"junk" * 20, "fake.png"))
    assert stored_files() == before
    assert not Attachment.objects.exists()


def test_an_image_canvas_over_the_pixel_limit_is_refused(settings, alice):
    settings.CHAT = {**settings.CHAT, "UPLOAD_IMAGE_MAX_PIXELS": 10_000}
    error = refused(
        ErrorCode.PAYLOAD_TOO_LARGE, lambda: upload(alice, image_bytes("PNG", (101, 100)), "a.png")
    )
    assert error.extra["max_pixels"] == 10_000
    upload(alice, image_bytes("PNG", (100, 100)), "ok.png")


def test_a_small_file_with_a_49_megapixel_canvas_is_refused_by_default(alice):
    buffer = io.BytesIO()
    Image.new("1", (7000, 7000)).save(buffer, "PNG")  # a few KB that decode to ~196 MB
    assert len(buffer.getvalue()) < 200 * 1024
    error = refused(ErrorCode.PAYLOAD_TOO_LARGE, lambda: upload(alice, buffer.getvalue(), "bomb.png"))
    assert error.extra["max_pixels"] == 24_000_000


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("holiday.png", "holiday.png"),
        ("Фото отпуска.PNG", "Фото отпуска.png"),
        ("../../etc/passwd", "passwd.png"),
        ("C:\\Users\\me\\evil.html", "evil.html.png"),
        ("bad\x00na\u202eme.png", "badname.png"),
        ("", "file.png"),
        ("...", "file.png"),
        ("a" * 300 + ".png", "a" * 116 + ".png"),
    ],
)
def test_names_lose_folders_and_control_characters_and_get_the_types_extension(name, clean):
    assert media.clean_name(name, media.KNOWN_TYPES["image/png"]) == clean


def test_stored_names_are_unguessable_and_ascii(alice):
    first = upload(alice, image_bytes(), "Фото.png")
    second = upload(alice, image_bytes(), "Фото.png")
    assert first.file.name != second.file.name
    token = first.file.name.split("/")[-2]
    assert len(token) == 32 and int(token, 16) >= 0
    assert first.file.name.isascii() and first.file.name.endswith(".png")


# --- limits ---------------------------------------------------------------------------------


def test_size_limits_refuse_before_anything_is_stored(settings, alice):
    settings.CHAT = {**settings.CHAT, "UPLOAD_MAX_BYTES": 100}
    error = refused(ErrorCode.PAYLOAD_TOO_LARGE, lambda: upload(alice, PDF + b" " * 100, "big.pdf"))
    assert error.extra == {"field": "file", "max_bytes": 100}
    refused(ErrorCode.INVALID, lambda: upload(alice, b"", "empty.txt"))
    assert stored_files() == [] and not Attachment.objects.exists()


def test_daily_volume_and_unused_uploads_are_bounded_per_user(settings, alice, bob):
    settings.CHAT = {**settings.CHAT, "UPLOAD_DAILY_BYTES": 2 * len(PDF), "UPLOAD_MAX_UNUSED": 3}
    upload(alice, PDF, "1.pdf")
    upload(alice, PDF, "2.pdf")
    refused(ErrorCode.RATE_LIMITED, lambda: upload(alice, PDF, "3.pdf"))
    upload(bob, PDF, "other users have their own budget.pdf")
    # A day later the volume is free again, but unused uploads still count.
    Attachment.objects.filter(uploader=alice.user).update(
        created_at=timezone.now() - timedelta(days=1, seconds=1)
    )
    upload(alice, PDF, "3.pdf")
    error = refused(ErrorCode.RATE_LIMITED, lambda: upload(alice, PDF, "4.pdf"))
    assert error.extra == {"max_unused": 3}


# --- the upload API -------------------------------------------------------------------------


def post_file(client, data: bytes, name: str, content_type: str = "application/octet-stream", **extra):
    file = io.BytesIO(data)
    file.name = name
    return client.post("/api/uploads/", {"file": file, **extra}, format="multipart")


def test_api_upload_answers_what_was_stored(settings, alice, client_for):
    response = post_file(client_for(alice), image_bytes("PNG", (4, 3)), "cat.png")
    assert response.status_code == 201, response.content
    body = response.json()
    attachment = Attachment.objects.get(public_id=body["id"])
    assert body == {
        "id": attachment.public_id,
        "kind": "image",
        "url": f"{settings.PUBLIC_BASE_URL}/media/{attachment.file.name}",
        "content_type": "image/png",
        "size": attachment.size,
        "name": "cat.png",
        "width": 4,
        "height": 3,
        "created_at": body["created_at"],
        "expires_at": body["expires_at"],
    }
    assert stored(attachment) and attachment.uploader == alice.user


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"file": "not a file"}, 400, "invalid"),
        ({"surprise": "x"}, 400, "invalid"),
    ],
)
def test_api_upload_refuses_malformed_requests(payload, status, code, alice, client_for):
    response = client_for(alice).post("/api/uploads/", payload, format="multipart")
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_api_upload_refuses_json_and_anonymous_callers(alice, client_for):
    response = client_for(alice).post("/api/uploads/", {"file": "x"}, format="json")
    assert response.status_code == 415
    response = post_file(client_for(), PDF, "a.pdf")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


def test_api_upload_of_an_unsupported_file_is_415_with_the_allowed_types(alice, client_for):
    response = post_file(client_for(alice), b"\x7fELF" + b"\x00" * 100, "tool.png")
    assert response.status_code == 415
    body = response.json()
    assert body["code"] == "unsupported_media_type"
    assert "image/png" in body["extra"]["allowed_types"]
    assert not Attachment.objects.exists()


def test_api_deletes_only_ones_own_unused_upload(alice, bob, client_for):
    mine = upload(alice, PDF, "a.pdf")
    assert client_for(bob).delete(f"/api/uploads/{mine.public_id}/").status_code == 404
    assert client_for(alice).delete(f"/api/uploads/{mine.public_id}/").status_code == 204
    mine.refresh_from_db()
    # The file is gone; the row stays, removed, so its bytes still count for the day.
    assert not stored(mine) and mine.removed_at is not None
    assert client_for(alice).delete(f"/api/uploads/{mine.public_id}/").status_code == 404
    used = upload(alice, PDF, "b.pdf")
    send(alice, direct(alice, bob), "", attachment_id=used.public_id)
    response = client_for(alice).delete(f"/api/uploads/{used.public_id}/")
    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert stored(used)


def test_rest_accepts_the_web_clients_cookie_with_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.cookies[ACCESS_COOKIE] = alice.access
    assert client.get("/api/conversations/").status_code == 200
    file = io.BytesIO(PDF)
    file.name = "a.pdf"
    response = client.post("/api/uploads/", {"file": file})
    assert response.status_code == 403 and "CSRF" in response.json()["message"]
    page = client.get("/")  # the web client's page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert page.status_code == 200
    file.seek(0)
    response = client.post("/api/uploads/", {"file": file}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content


# --- media messages -------------------------------------------------------------------------


def test_a_media_message_takes_the_uploads_kind_and_an_optional_caption(alice, bob, bus_sent, client_for):
    chat = direct(alice, bob)
    photo = upload(alice, image_bytes(), "cat.png")
    response = client_for(alice).post(
        f"/api/conversations/{chat.public_id}/messages/", {"attachment_id": photo.public_id}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["content"]) == ("image", "")
    assert body["attachment"] == events.attachment_payload(photo)
    [(_groups, event)] = bus_sent
    assert event["message"]["attachment"]["url"] == media.attachment_url(photo)
    assert event["message"]["kind"] == "image"

    song = upload(alice, MP3, "song.mp3")
    message = send(alice, chat, "listen", message_kind="file", attachment_id=song.public_id)
    assert (message.kind, message.content, message.attachment_id) == ("file", "listen", song.pk)


def test_expresschat_clients_see_the_caption_and_the_url_as_content(alice, bob):
    for conversation, name in (
        (direct(alice, bob), "receive-personal-message"),
        (group(alice, bob), "receive-group-message"),
    ):
        photo = upload(alice, image_bytes(), "cat.png")
        message = send(alice, conversation, "look", attachment_id=photo.public_id)
        event = events.message_created(conversation=conversation, message=message, sender=message.sender)
        emit, _echo = expresschat.render(event)
        url = media.attachment_url(photo)
        assert emit.name == name
        assert emit.payload["Content"] == f"look\n{url}"
        assert emit.payload["Caption"] == "look"
        assert emit.payload["Kind"] == "image"
        assert emit.payload["Attachment"] == {
            "Id": photo.public_id,
            "Kind": "image",
            "Url": url,
            "Type": "image/png",
            "Size": photo.size,
            "Name": "cat.png",
            "Width": 3,
            "Height": 2,
        }
    bare = send(alice, direct(alice, bob), None, attachment_id=upload(alice, PDF, "a.pdf").public_id)
    history = expresschat.personal_message(bare, {})
    assert history["Content"] == media.attachment_url(bare.attachment)
    assert (history["Kind"], history["Caption"]) == ("file", "")


def test_text_messages_carry_kind_and_no_attachment_for_extension_clients(alice, bob):
    message = send(alice, direct(alice, bob), "plain")
    emit, _echo = expresschat.render(
        events.message_created(conversation=message.conversation, message=message, sender=message.sender)
    )
    assert (emit.payload["Content"], emit.payload["Kind"], emit.payload["Attachment"]) == (
        "plain",
        "text",
        None,
    )
    assert "Caption" not in emit.payload


@pytest.mark.parametrize(
    ("kind", "attachment", "code", "field"),
    [
        ("image", None, ErrorCode.INVALID, "attachment_id"),
        ("text", "pdf", ErrorCode.INVALID, "attachment_id"),
        ("emoji", "pdf", ErrorCode.INVALID, "attachment_id"),
        ("video", "png", ErrorCode.INVALID, "kind"),
        ("system", None, ErrorCode.INVALID, "kind"),
        ("sticker", None, ErrorCode.INVALID, "kind"),
        (5, None, ErrorCode.INVALID, "kind"),
        (None, "unknown", ErrorCode.NOT_FOUND, "attachment_id"),
        (None, 17, ErrorCode.INVALID, "attachment_id"),
    ],
)
def test_kinds_and_attachments_must_match(kind, attachment, code, field, alice, bob):
    chat = direct(alice, bob)
    ids = {
        "pdf": upload(alice, PDF, "a.pdf").public_id,
        "png": upload(alice, image_bytes(), "a.png").public_id,
    }
    attachment_id = ids.get(attachment, attachment)
    error = refused(code, lambda: send(alice, chat, "x", message_kind=kind, attachment_id=attachment_id))
    assert error.extra["field"] == field
    assert not Message.objects.exists()


def test_an_upload_is_used_once_and_only_by_its_uploader(alice, bob):
    chat = direct(alice, bob)
    photo = upload(alice, image_bytes(), "a.png")
    refused(ErrorCode.NOT_FOUND, lambda: send(bob, chat, "", attachment_id=photo.public_id))
    send(alice, chat, "", attachment_id=photo.public_id)
    refused(ErrorCode.CONFLICT, lambda: send(alice, chat, "again", attachment_id=photo.public_id))
    # Within one batch, too: the first send takes it.
    other = upload(alice, image_bytes(), "b.png")
    requests = [services.SendRequest(alice.user, chat.public_id, "", attachment_id=other.public_id)] * 2
    first, second = services.message_send_many(requests=requests)
    assert first.error is None and first.message.attachment_id == other.pk
    assert second.error.code == ErrorCode.CONFLICT


def test_a_retried_media_send_returns_the_original_not_a_conflict(alice, bob):
    chat = direct(alice, bob)
    photo = upload(alice, image_bytes(), "a.png")

    def attempt():
        return services.message_send(
            user=alice.user,
            conversation_id=chat.public_id,
            content="",
            client_message_id="m1",
            attachment_id=photo.public_id,
        )

    (first, created), (again, created_again) = attempt(), attempt()
    assert (created, created_again, again.pk) == (True, False, first.pk)


@pytest.mark.parametrize("content", ["👍", "🎉🎉🎉", "👍🏽", "👩‍👩‍👧‍👦", "🇫🇷", "1️⃣", "❤️"])
def test_emoji_messages_hold_only_emoji(content, alice, bob):
    assert send(alice, direct(alice, bob), content, message_kind="emoji").kind == "emoji"


@pytest.mark.parametrize("content", ["hi 👍", "1", "👍 👍", "", None, "👍" * 49])
def test_emoji_messages_refuse_anything_else(content, alice, bob):
    refused(ErrorCode.INVALID, lambda: send(alice, direct(alice, bob), content, message_kind="emoji"))


def test_captions_are_edited_and_may_become_empty_text_may_not(alice, bob):
    chat = direct(alice, bob)
    photo = send(alice, chat, "caption", attachment_id=upload(alice, image_bytes(), "a.png").public_id)
    assert services.message_edit(user=alice.user, message_id=photo.public_id, content="").content == ""
    text = send(alice, chat, "text")
    refused(
        ErrorCode.INVALID,
        lambda: services.message_edit(user=alice.user, message_id=text.public_id, content=""),
    )


# --- deleting, hiding, purging --------------------------------------------------------------


def test_deleting_a_media_message_erases_its_file(alice, bob, django_capture_on_commit_callbacks):
    chat = group(alice, bob)
    photo = upload(alice, image_bytes(), "a.png")
    message = send(alice, chat, "", attachment_id=photo.public_id)
    with django_capture_on_commit_callbacks(execute=True):
        services.message_delete(user=alice.user, message_id=message.public_id)
    photo.refresh_from_db()
    assert photo.removed_at is not None and not stored(photo)
    assert selectors.attachment_for_serving(name=photo.file.name) is None
    message.refresh_from_db()
    assert (message.kind, message.served_attachment) == ("image", None)
    assert expresschat.group_message(message, {})["Attachment"] is None


def test_a_rolled_back_delete_keeps_the_file(alice, bob):
    chat = direct(alice, bob)
    photo = upload(alice, image_bytes(), "a.png")
    message = send(alice, chat, "", attachment_id=photo.public_id)
    services.message_delete(user=alice.user, message_id=message.public_id)  # on_commit never runs here
    assert stored(photo)


def test_a_hidden_media_message_keeps_its_file_but_it_is_not_served(alice, bob, make_user):
    from django.contrib.auth.models import Permission

    moderator = make_user("Mod")
    moderator.user.is_staff = True
    moderator.user.save(update_fields=["is_staff"])
    moderator.user.user_permissions.add(Permission.objects.get(codename="moderate_message"))
    photo = upload(alice, image_bytes(), "a.png")
    message = send(alice, direct(alice, bob), "", attachment_id=photo.public_id)
    assert selectors.attachment_for_serving(name=photo.file.name) == photo
    services.message_moderate(
        moderator=type(moderator.user).objects.get(pk=moderator.user.pk),
        message_id=message.public_id,
        action="hide",
        reason="spam",
    )
    assert stored(photo)
    assert selectors.attachment_for_serving(name=photo.file.name) is None


def test_purge_removes_old_unused_uploads_only(alice, bob, django_capture_on_commit_callbacks):
    chat = direct(alice, bob)
    old_unused, old_used, fresh = (upload(alice, PDF, f"{n}.pdf") for n in range(3))
    send(alice, chat, "", attachment_id=old_used.public_id)
    Attachment.objects.filter(pk__in=[old_unused.pk, old_used.pk]).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("uploads_purge", stdout=out)
    assert out.getvalue() == "purged 1 unused uploads\n"
    assert not stored(old_unused) and stored(old_used) and stored(fresh)
    assert list(Attachment.objects.filter(removed_at__isnull=False).values_list("pk", flat=True)) == [
        old_unused.pk
    ]
    # A day after its removal, the row goes too (it no longer counts for any day).
    Attachment.objects.filter(pk=old_unused.pk).update(
        removed_at=timezone.now() - timedelta(days=1, minutes=1)
    )
    uploads.uploads_purge()
    assert set(Attachment.objects.values_list("pk", flat=True)) == {old_used.pk, fresh.pk}


def test_deleting_and_uploading_again_does_not_reset_the_daily_volume(settings, alice, client_for):
    settings.CHAT = {**settings.CHAT, "UPLOAD_DAILY_BYTES": 2 * len(PDF)}
    for name in ("1.pdf", "2.pdf"):
        uploads.upload_delete(user=alice.user, attachment_id=upload(alice, PDF, name).public_id)
    refused(ErrorCode.RATE_LIMITED, lambda: upload(alice, PDF, "3.pdf"))


def test_clients_can_read_the_upload_rules_first(settings, alice, client_for):
    settings.CHAT = {
        **settings.CHAT,
        "UPLOAD_ALLOWED_TYPES": ["image/png", "text/plain"],
        "UPLOAD_MAX_BYTES": 1000,
    }
    body = client_for(alice).get("/api/uploads/limits/").json()
    assert body == {
        "max_bytes": 1000,
        "max_image_pixels": settings.CHAT["UPLOAD_IMAGE_MAX_PIXELS"],
        "allowed_types": {"image/png": [".png"], "text/plain": [".txt", ".md", ".csv", ".log", ".json"]},
        "daily_bytes": settings.CHAT["UPLOAD_DAILY_BYTES"],
        "max_unused": settings.CHAT["UPLOAD_MAX_UNUSED"],
        "unused_ttl_seconds": settings.CHAT["UPLOAD_UNUSED_TTL_SECONDS"],
        "max_caption_length": settings.CHAT["MAX_MESSAGE_LENGTH"],
    }
    assert client_for().get("/api/uploads/limits/").status_code == 401


def test_the_web_clients_csp_allows_files_from_the_configured_origins(settings, alice):
    settings.PUBLIC_BASE_URL = "https://chat.example.com"
    settings.CHAT = {**settings.CHAT, "MEDIA_ORIGINS": ["https://cdn.example.net", "not a url"]}
    page = Client().get("/")
    csp = (
        re.search(rb'http-equiv="Content-Security-Policy" content="([^"]+)"', page.content).group(1).decode()
    )
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    for name in ("img-src", "media-src"):
        assert directives[name].split()[-2:] == ["https://chat.example.com", "https://cdn.example.net"]
    assert "not a url" not in csp


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-3", (0, 3)),
        ("bytes=-4", (6, 9)),
        ("bytes=5-", (5, 9)),
        ("bytes=3-100", (3, 9)),
        ("bytes=10-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=5-3", None),  # malformed: the whole file (RFC 9110), not 416
        ("bytes=0-3,5-6", None),  # several ranges: the whole file
        ("items=0-3", None),
        ("bytes=x-", None),
    ],
)
def test_byte_ranges_of_a_ten_byte_file(header, expected):
    from chatproject.core.files import _byte_range

    assert _byte_range(header, 10) == expected


def test_a_repeated_send_in_one_batch_is_refused_like_its_first_copy(alice, bob):
    chat = direct(alice, bob)
    bobs = upload(bob, PDF, "b.pdf")
    request = services.SendRequest(alice.user, chat.public_id, "", "same-id", attachment_id=bobs.public_id)
    first, again = services.message_send_many(requests=[request, request])
    assert (first.message, again.message) == (None, None)
    assert first.error.code == again.error.code == ErrorCode.NOT_FOUND
