"""Three indexes of the message table that a send wrote and no query needed (issue 19).

- `public_id`'s `varchar_pattern_ops` copy, which Django adds on PostgreSQL to every unique
  CharField for LIKE queries: nothing searches message ids by prefix, and since ids are random
  each copy takes its entry on a random page. Found by the catalog (its name is a hash), and
  only on PostgreSQL (SQLite has none).
- `conversation`'s own index: (conversation, seq) and (conversation, rev) lead with it.
- `reply_to`'s index over every message: now only over the messages that quote one.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_LIKE_INDEXES = """
    SELECT indexname FROM pg_indexes
    WHERE schemaname = current_schema() AND tablename = 'messaging_message'
      AND indexdef LIKE '%(public_id varchar_pattern_ops)%'
"""


def drop_public_id_like(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(_LIKE_INDEXES)
        names = [row[0] for row in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_public_id_like(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX messaging_message_public_id_82b7a873_like "
        "ON messaging_message (public_id varchar_pattern_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0008_chat_requests"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(drop_public_id_like, create_public_id_like),
        migrations.AlterField(
            model_name="message",
            name="conversation",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="messages",
                to="messaging.conversation",
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="reply_to",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="messaging.message",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("reply_to__isnull", False)), fields=["reply_to"], name="message_reply_to"
            ),
        ),
    ]
