"""Fewer bytes written a send (issue 19, bench/README.md session 9).

Three indexes of the message table that every send wrote and no query needed:

- `public_id`'s `varchar_pattern_ops` copy, which Django adds on PostgreSQL to every unique
  CharField for LIKE queries: nothing searches message ids by prefix.
- `conversation`'s own index: (conversation, seq) and (conversation, rev) lead with it.
- `reply_to`'s index over every message: now only over the messages that quote one (what
  SET_NULL's `reply_to_id IN (...)` and PostgreSQL's own check on delete look up).

And message ids are made by `new_message_id` (time-ordered; no SQL).

The indexes are dropped and made by name, CONCURRENTLY on PostgreSQL, so the migration takes no
lock that stops sends: left to Django, `db_index=False` on a foreign key drops the constraint
and adds it again, checking every message while holding the table's exclusive lock. The names
are the ones Django gave them (`schema_editor._create_index_name`, deterministic); a database
where one is missing skips it (IF EXISTS / IF NOT EXISTS). On SQLite (development) the same
statements run without CONCURRENTLY.
"""

import django.db.models.deletion
from django.db import migrations, models

import chatproject.core.ids

_DROPPED = [
    ("messaging_message_public_id_82b7a873_like", "(public_id varchar_pattern_ops)"),
    ("messaging_message_conversation_id_3db4d3d1", "(conversation_id)"),
    ("messaging_message_reply_to_id_f28e3285", "(reply_to_id)"),
]
_REPLY_TO = ("message_reply_to", "(reply_to_id) WHERE reply_to_id IS NOT NULL")


def _run(schema_editor, drop: list[str], create: list[tuple[str, str]]) -> None:
    postgresql = schema_editor.connection.vendor == "postgresql"
    concurrently = " CONCURRENTLY" if postgresql else ""
    for name in drop:
        schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {schema_editor.quote_name(name)}")
    for name, definition in create:
        if "varchar_pattern_ops" in definition and not postgresql:
            continue  # SQLite never had it
        schema_editor.execute(
            f"CREATE INDEX{concurrently} IF NOT EXISTS {schema_editor.quote_name(name)} "
            f"ON messaging_message {definition}"
        )


def forwards(apps, schema_editor):
    _run(schema_editor, drop=[name for name, _ in _DROPPED], create=[_REPLY_TO])


def backwards(apps, schema_editor):
    _run(schema_editor, drop=[_REPLY_TO[0]], create=_DROPPED)


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY run outside a transaction

    dependencies = [("messaging", "0008_chat_requests")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="public_id",
                    field=models.CharField(
                        default=chatproject.core.ids.new_message_id,
                        editable=False,
                        max_length=24,
                        unique=True,
                    ),
                ),
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
                        condition=models.Q(("reply_to__isnull", False)),
                        fields=["reply_to"],
                        name="message_reply_to",
                    ),
                ),
            ],
        )
    ]
