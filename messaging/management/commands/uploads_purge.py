from django.core.management.base import BaseCommand

from messaging.uploads import uploads_purge


class Command(BaseCommand):
    help = (
        "Delete uploads that no message used within CHAT_UPLOAD_UNUSED_TTL_SECONDS (files and rows). "
        "Run it periodically, e.g. hourly from cron or a systemd timer."
    )

    def handle(self, *args, **options) -> None:
        purged = uploads_purge()
        self.stdout.write(f"purged {purged} unused uploads")
