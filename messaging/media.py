"""What an uploaded file is, judged from its bytes, and how it is named and addressed.

A client's Content-Type and file name are hints at best and an attack at worst (an HTML page
named photo.jpg, served inline, runs script on the server's origin). So the type of an upload is
recognised from its first bytes against a fixed list of formats (`KNOWN_TYPES`); the client's
declared type only chooses between readings of the same bytes (a WebM or MP4 container holding
only sound is audio). Images are also opened with Pillow, which checks their structure and
gives their dimensions before anything is stored. The stored name always ends in the extension
of the recognised type, so no storage backend or proxy can serve an upload as something else.

Pure functions apart from reading the file; the rules on who may upload what, and the limits,
live in uploads.py.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.text import slugify

from .models import Attachment

HEAD_BYTES = 64  # every signature below is within the first 64 bytes
NAME_MAX = 120  # characters of a cleaned file name (the column holds 255)


@dataclass(frozen=True)
class MediaType:
    mime: str
    kind: str  # an Attachment.Kind
    extensions: tuple[str, ...]  # the first is the canonical one; a name may keep any of them

    @property
    def inline(self) -> bool:
        """Shown in the page (image, video, audio) rather than downloaded."""
        return self.kind != Attachment.Kind.FILE


def _t(mime: str, kind: str, *extensions: str) -> tuple[str, MediaType]:
    return mime, MediaType(mime, kind, extensions)


IMAGE, VIDEO, AUDIO, FILE = (
    Attachment.Kind.IMAGE,
    Attachment.Kind.VIDEO,
    Attachment.Kind.AUDIO,
    Attachment.Kind.FILE,
)

KNOWN_TYPES: dict[str, MediaType] = dict(
    [
        _t("image/jpeg", IMAGE, ".jpg", ".jpeg"),
        _t("image/png", IMAGE, ".png"),
        _t("image/gif", IMAGE, ".gif"),
        _t("image/webp", IMAGE, ".webp"),
        _t("video/mp4", VIDEO, ".mp4", ".m4v"),
        _t("video/webm", VIDEO, ".webm"),
        _t("video/quicktime", VIDEO, ".mov"),
        _t("audio/mpeg", AUDIO, ".mp3"),
        _t("audio/ogg", AUDIO, ".ogg", ".oga", ".opus"),
        _t("audio/wav", AUDIO, ".wav"),
        _t("audio/flac", AUDIO, ".flac"),
        _t("audio/mp4", AUDIO, ".m4a"),
        _t("audio/webm", AUDIO, ".weba", ".webm"),
        _t("application/pdf", FILE, ".pdf"),
        _t("application/zip", FILE, ".zip"),
        # Office documents are zip archives; the name tells which one (the bytes say "zip").
        _t("application/vnd.openxmlformats-officedocument.wordprocessingml.document", FILE, ".docx"),
        _t("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", FILE, ".xlsx"),
        _t("application/vnd.openxmlformats-officedocument.presentationml.presentation", FILE, ".pptx"),
        _t("application/vnd.oasis.opendocument.text", FILE, ".odt"),
        _t("application/vnd.oasis.opendocument.spreadsheet", FILE, ".ods"),
        _t("application/vnd.oasis.opendocument.presentation", FILE, ".odp"),
        # UTF-8 text without control characters. Served as text/plain, never as markup.
        _t("text/plain", FILE, ".txt", ".md", ".csv", ".log", ".json"),
    ]
)

# Pillow's name for each image format it must find in an image of that type.
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
_ZIP_BY_EXTENSION = {
    ext: media
    for media in KNOWN_TYPES.values()
    if media.kind == FILE and media.mime.startswith("application/vnd.")
    for ext in media.extensions
}
# ISO base media (MP4 family) brands that mean sound only, and QuickTime's.
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A "}
_QUICKTIME_BRANDS = {b"qt  "}


class UnsupportedType(Exception):
    """The bytes are none of the known formats (or the format is not allowed here)."""


class BadImage(Exception):
    """The bytes start like an image but do not hold a usable one."""


class ImageTooLarge(Exception):
    """The image's canvas (width x height) exceeds UPLOAD_IMAGE_MAX_PIXELS."""

    def __init__(self, pixels: int):
        super().__init__(pixels)
        self.pixels = pixels


def _binary_type(head: bytes, declared: str, extension: str) -> str | None:
    """The MIME type the first bytes show, or None when they are no binary format we know."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS or (declared.startswith("audio/") and brand != b"qt  "):
            return "audio/mp4"
        return "video/quicktime" if brand in _QUICKTIME_BRANDS else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:HEAD_BYTES]:
        return "audio/webm" if declared.startswith("audio/") else "video/webm"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return "audio/mpeg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        office = _ZIP_BY_EXTENSION.get(extension)
        return office.mime if office else "application/zip"
    return None


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header (an MP3 without ID3 tag): 11 sync bits, then no reserved
    value in version, layer (00 is how AAC's ADTS headers start), bitrate or sample rate, and
    not the "free" bitrate either, which leaves little that is not really MP3."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    return version != 1 and layer != 0 and bitrate not in (0, 0xF) and rate != 3


# Control characters (Unicode category Cc) other than tab, newlines and form feed.
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _is_text(file: IO[bytes]) -> bool:
    """UTF-8 throughout (read in chunks: the file may be large), without NUL or other control
    characters but tab, newlines and form feed."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    file.seek(0)
    try:
        while chunk := file.read(64 * 1024):
            if _TEXT_CONTROLS.search(decoder.decode(chunk)):
                return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def allowed_types() -> dict[str, MediaType]:
    """The known types this server accepts (CHAT UPLOAD_ALLOWED_TYPES; empty means all)."""
    allowed = settings.CHAT["UPLOAD_ALLOWED_TYPES"]
    return {mime: t for mime, t in KNOWN_TYPES.items() if not allowed or mime in allowed}


def identify(file: IO[bytes], *, declared: str = "", name: str = "") -> MediaType:
    """The type of the file's content. `declared` (the client's Content-Type) and the name's
    extension only pick between readings of the same bytes. Raises UnsupportedType."""
    file.seek(0)
    head = file.read(HEAD_BYTES)
    declared = (declared or "").split(";")[0].strip().lower()
    extension = os.path.splitext(name)[1].lower()
    mime = _binary_type(head, declared, extension)
    if mime is None and head and _is_text(file):
        mime = "text/plain"
    file.seek(0)
    media = allowed_types().get(mime) if mime else None
    if media is None:
        raise UnsupportedType(mime or "unknown")
    return media


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed
    height: int
    orientation: int  # EXIF orientation, 1 to 8 (1: as stored)


def image_dimensions(file: IO[bytes], media: MediaType) -> ImageInfo:
    """Width and height of the image as it is displayed (EXIF orientation applied), after
    Pillow checked its structure. Raises BadImage or ImageTooLarge. Nothing is decoded in full:
    the canvas size is checked before any pixel is."""
    from PIL import Image, UnidentifiedImageError  # imported here: only uploads need Pillow

    file.seek(0)
    try:
        with Image.open(file) as image:
            if image.format != PILLOW_FORMATS[media.mime]:
                raise BadImage(f"content is {image.format}, not {media.mime}")
            width, height = image.size
            if width < 1 or height < 1:
                raise BadImage("empty canvas")
            if width * height > settings.CHAT["UPLOAD_IMAGE_MAX_PIXELS"]:
                raise ImageTooLarge(width * height)
            orientation = image.getexif().get(0x0112, 1) if media.mime in ("image/jpeg", "image/webp") else 1
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImage(str(exc)) from exc
    finally:
        file.seek(0)
    # Orientations 5 to 8 turn the picture a quarter: what viewers show is height x width.
    if orientation not in range(1, 9):
        orientation = 1
    shown = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return ImageInfo(*shown, orientation)


# JPEG segments that carry metadata rather than picture: EXIF and XMP (APP1, where cameras and
# phones put the GPS position, device and time), Photoshop/IPTC (APP13) and comments. APP2 is
# dropped only when it is an MPF index (of pictures appended after the main one); an ICC colour
# profile in APP2 stays.
_JPEG_METADATA_MARKERS = {0xE1, 0xED, 0xFE}
_JPEG_APP2 = 0xE2
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn: no length field
_JPEG_START_OF_SCAN = 0xDA
_JPEG_END_OF_IMAGE = 0xD9


def _orientation_segment(orientation: int) -> bytes:
    """An APP1 segment holding an EXIF block with the orientation tag alone."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = b"Exif\x00\x00" + exif.tobytes()
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def _scan_end(data: bytes, position: int) -> int:
    """Where the entropy-coded data that starts at `position` ends: the next marker that is
    not a stuffed 0xFF00 or a restart marker."""
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return -1
        following = data[position + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            position += 1
            continue
        return position


def jpeg_without_metadata(data: bytes, orientation: int = 1) -> bytes | None:
    """The JPEG with its metadata segments removed, losslessly (the compressed picture is
    copied byte for byte), and nothing after its end marker (phones append a second picture
    or a video there, with metadata of their own). An orientation other than 1 is kept, in a
    minimal EXIF block of its own, so the picture still shows the right way up. None when the
    structure is not what a JPEG's must be (the caller then keeps nothing)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    kept = [b"\xff\xd8"]
    if orientation != 1:
        kept.append(_orientation_segment(orientation))
    position = 2
    while position + 2 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == _JPEG_END_OF_IMAGE:
            kept.append(b"\xff\xd9")
            return b"".join(kept)
        if marker in _JPEG_STANDALONE:
            kept.append(data[position : position + 2])
            position += 2
            continue
        if position + 4 > len(data):
            return None
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        end = position + 2 + length
        if length < 2 or end > len(data):
            return None
        segment = data[position:end]
        metadata = marker in _JPEG_METADATA_MARKERS or (marker == _JPEG_APP2 and segment[4:8] == b"MPF\x00")
        if not metadata:
            kept.append(segment)
        position = end
        if marker == _JPEG_START_OF_SCAN:
            # The picture's coded data, as it is, up to the next marker (progressive JPEGs
            # have several scans, with tables between them).
            scan_end = _scan_end(data, position)
            if scan_end < 0:
                return None
            kept.append(data[position:scan_end])
            position = scan_end
    return None


def clean_name(name: str, media: MediaType) -> str:
    """The uploader's file name, fit to show and to download: no folders, no control
    characters, at most NAME_MAX characters, and an extension of the recognised type (the
    original one when it is one of them, else the type's own). "x.html" holding a PNG becomes
    "x.html.png"."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip().strip(".")
    stem, extension = os.path.splitext(base)
    if extension.lower() not in media.extensions:
        stem, extension = base, media.extensions[0]
    stem = stem.strip() or "file"
    return stem[: NAME_MAX - len(extension)] + extension.lower()


def storage_name(clean: str) -> str:
    """Where the file goes in storage: uploads/<year>/<month>/<128 random bits>/<ascii name>.
    The random part makes the URL unguessable and every name unique."""
    stem, extension = os.path.splitext(clean)
    now = timezone.now()
    ascii_stem = slugify(stem)[:60] or "file"
    return f"uploads/{now:%Y}/{now:%m}/{secrets.token_hex(16)}/{ascii_stem}{extension}"


def attachment_url(attachment: Attachment) -> str:
    """An absolute URL of the file: the storage's own URL (a CDN's or a signed one, with a
    django-storages backend), made absolute with PUBLIC_BASE_URL when the storage answers a
    path (the local folder served by the app)."""
    url = default_storage.url(attachment.file.name)
    if url.startswith("/"):
        return settings.PUBLIC_BASE_URL + url
    return url
