"""Services of uploads (messaging.Attachment): store a checked file, delete an unused one,
erase a deleted message's file, purge what nobody used. Sending a media message is
`services.message_send` with an `attachment_id`.

Files go through Django's default storage (a local folder unless STORAGE_BACKEND says
otherwise). Storage writes happen outside database transactions, and storage deletes only
after the transaction that decided them committed, so a rollback never leaves a row without
its file.
"""

import logging
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id

from . import media
from .models import Attachment, Message

logger = logging.getLogger(__name__)


def _refuse_over_quota(user: User, size: int) -> None:
    limits = settings.CHAT
    unused = Attachment.objects.filter(uploader=user, message__isnull=True, removed_at__isnull=True).count()
    if unused >= limits["UPLOAD_MAX_UNUSED"]:
        raise ApplicationError(
            ErrorCode.RATE_LIMITED,
            f"You have {unused} uploads no message uses yet; send or delete some first.",
            {"max_unused": limits["UPLOAD_MAX_UNUSED"]},
        )
    since = timezone.now() - timedelta(days=1)
    recent = (
        Attachment.objects.filter(uploader=user, created_at__gte=since).aggregate(total=Sum("size"))["total"]
        or 0
    )
    if recent + size > limits["UPLOAD_DAILY_BYTES"]:
        raise ApplicationError(
            ErrorCode.RATE_LIMITED,
            "Daily upload volume exceeded; try again later.",
            {"daily_bytes": limits["UPLOAD_DAILY_BYTES"], "used_bytes": recent},
        )


def _checked_type(
    file: IO[bytes], declared: str, name: str
) -> tuple[media.MediaType, media.ImageInfo | None]:
    """The file's type from its content, and an image's dimensions; refusals as errors."""
    try:
        media_type = media.identify(file, declared=declared, name=name)
    except media.UnsupportedType:
        allowed = sorted(media.allowed_types())
        raise ApplicationError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            "The file's content is not a type this server accepts.",
            {"field": "file", "allowed_types": allowed},
        ) from None
    if media_type.kind != Attachment.Kind.IMAGE:
        return media_type, None
    try:
        info = media.image_dimensions(file, media_type)
    except media.ImageTooLarge as exc:
        maximum = settings.CHAT["UPLOAD_IMAGE_MAX_PIXELS"]
        raise ApplicationError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The image has {exc.pixels} pixels; at most {maximum} are accepted.",
            {"field": "file", "max_pixels": maximum},
        ) from None
    except media.BadImage:
        raise ApplicationError(
            ErrorCode.INVALID, "The file is not a readable image.", {"field": "file"}
        ) from None
    return media_type, info


def _without_metadata(
    file: IO[bytes], media_type: media.MediaType, info: media.ImageInfo | None
) -> IO[bytes]:
    """Photos lose their metadata before they are stored: the GPS position, the device and the
    time a phone writes into a JPEG would otherwise reach everyone in the chat. Lossless (see
    media.jpeg_without_metadata); other types are stored as uploaded."""
    if media_type.mime != "image/jpeg" or info is None:
        return file
    file.seek(0)
    cleaned = media.jpeg_without_metadata(file.read(), info.orientation)
    file.seek(0)
    if cleaned is None:  # Pillow read it, but its segments are odd: store it as it came
        logger.warning("jpeg segments not understood; stored unchanged")
        return file
    return ContentFile(cleaned)


def upload_create(
    *, user: User, file: IO[bytes], name: str, size: int, declared_type: str = ""
) -> Attachment:
    """Store an uploaded file for a later media message and return its Attachment.

    Refused, with nothing stored: an empty file or one over CHAT UPLOAD_MAX_BYTES
    (payload_too_large), content that is none of the allowed types whatever its name and
    declared type say (unsupported_media_type), an image that does not decode or has more than
    UPLOAD_IMAGE_MAX_PIXELS pixels, and a user over the daily volume or the number of unused
    uploads (rate_limited). The stored name ends in the recognised type's extension.
    """
    maximum = settings.CHAT["UPLOAD_MAX_BYTES"]
    if size > maximum:
        raise ApplicationError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The file is larger than {maximum} bytes.",
            {"field": "file", "max_bytes": maximum},
        )
    if size == 0:
        raise ApplicationError(ErrorCode.INVALID, "The file is empty.", {"field": "file"})
    _refuse_over_quota(user, size)
    media_type, info = _checked_type(file, declared_type, name)
    clean = media.clean_name(name, media_type)
    content = _without_metadata(file, media_type, info)
    content.seek(0)
    size = content.size if isinstance(content, ContentFile) else size
    stored = default_storage.save(media.storage_name(clean), content)
    try:
        attachment = Attachment.objects.create(
            uploader=user,
            file=stored,
            name=clean,
            content_type=media_type.mime,
            kind=media_type.kind,
            size=size,
            width=info.width if info else None,
            height=info.height if info else None,
        )
    except Exception:
        default_storage.delete(stored)  # no row, no file
        raise
    logger.info(
        "upload stored: attachment=%s user=%s type=%s size=%d",
        attachment.public_id,
        user.public_id,
        media_type.mime,
        size,
    )
    return attachment


def upload_limits() -> dict:
    """The upload rules of this server, as settings make them, for clients to check first."""
    limits = settings.CHAT
    return {
        "max_bytes": limits["UPLOAD_MAX_BYTES"],
        "max_image_pixels": limits["UPLOAD_IMAGE_MAX_PIXELS"],
        "allowed_types": {mime: list(t.extensions) for mime, t in media.allowed_types().items()},
        "daily_bytes": limits["UPLOAD_DAILY_BYTES"],
        "max_unused": limits["UPLOAD_MAX_UNUSED"],
        "unused_ttl_seconds": limits["UPLOAD_UNUSED_TTL_SECONDS"],
        "max_caption_length": limits["MAX_MESSAGE_LENGTH"],
    }


def _upload_not_found() -> ApplicationError:
    return ApplicationError(ErrorCode.NOT_FOUND, "No such upload.", {"field": "attachment_id"})


def upload_delete(*, user: User, attachment_id: object) -> None:
    """Delete one's own upload that no message uses (a message's file goes with the message).
    Someone else's or unknown: not_found; in use: conflict."""
    if not is_public_id(attachment_id):
        raise _upload_not_found()
    with transaction.atomic():
        attachment = (
            Attachment.objects.select_for_update()
            .filter(public_id=attachment_id, uploader=user, removed_at__isnull=True)
            .first()
        )
        if attachment is None:
            raise _upload_not_found()
        if Attachment.objects.filter(pk=attachment.pk, message__isnull=False).exists():
            raise ApplicationError(
                ErrorCode.CONFLICT, "The upload is attached to a message; delete the message instead."
            )
        # The row stays (removed), so the bytes still count towards the daily volume: deleting
        # and uploading again must not reset it. The purge drops such rows later.
        _remove(attachment)


def _remove(attachment: Attachment) -> None:
    """Inside a transaction: mark the attachment removed and erase its file once it commits."""
    Attachment.objects.filter(pk=attachment.pk).update(removed_at=timezone.now())
    name = attachment.file.name
    transaction.on_commit(lambda: _storage_delete(name))


def attachment_erase(*, attachment: Attachment) -> None:
    """Inside the transaction that deletes a message: mark its attachment removed and erase the
    file from storage once that transaction commits. The row stays (the message keeps its
    kind); the serving view answers 404 from then on."""
    if attachment.removed_at is None:
        _remove(attachment)


def _storage_delete(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:  # a storage outage must not fail the request that already committed
        logger.exception("could not delete stored file %s", name)


def uploads_purge(*, older_than: timedelta | None = None) -> int:
    """Remove uploads that no message used within CHAT UPLOAD_UNUSED_TTL_SECONDS (or
    `older_than`): their files go, their rows stay a day longer (they count towards the daily
    volume), then go too. Returns how many files were removed. Run it periodically
    (manage.py uploads_purge)."""
    age = (
        older_than
        if older_than is not None
        else timedelta(seconds=settings.CHAT["UPLOAD_UNUSED_TTL_SECONDS"])
    )
    now = timezone.now()
    purged = 0
    stale = Attachment.objects.filter(created_at__lt=now - age, message__isnull=True, removed_at__isnull=True)
    for pk in list(stale.values_list("pk", flat=True)[:10_000]):
        with transaction.atomic():
            attachment = Attachment.objects.select_for_update().filter(pk=pk, removed_at__isnull=True).first()
            # Checked again under the lock, in a statement of its own: a send that took it
            # meanwhile committed its message (the lock's re-read would not see the join).
            if attachment is None or Message.objects.filter(attachment_id=pk).exists():
                continue
            _remove(attachment)
            purged += 1
    # Rows of removed, never used uploads, once out of the daily window.
    Attachment.objects.filter(removed_at__lt=now - max(age, timedelta(days=1)), message__isnull=True).delete()
    logger.info("uploads purged: count=%d", purged)
    return purged
