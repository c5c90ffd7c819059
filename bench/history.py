"""Scenario 4, history at depth, timed in-process (server time, no network).

Run by bench/run.py as a Django script on the bench database, pinned to the server core:
    history.py MESSAGES DEPTH PAGE ITERATIONS WARMUP OUT.json PLANS.txt

1. Two verified users and their direct conversation, through the product's services.
2. MESSAGES rows in one INSERT ... SELECT generate_series, and conversation.last_seq set.
3. `messaging.selectors.message_history` (what every history read goes through) timed for the
   newest page and for the page DEPTH messages deep (keyset: before = last_seq - DEPTH + 1),
   ITERATIONS times each after WARMUP untimed calls (wall time, and the thread's CPU time);
   `conversation_page` (the socket handler's selector: history + read pointers + partner)
   likewise.
4. The floor: the one keyset SQL query alone, through the same driver.
5. EXPLAIN (ANALYZE, BUFFERS) of every statement the selector ran, written to PLANS.txt (the
   statements of one round trip, sent together, each on its own).
"""

import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from messaging.models import Conversation, Message  # noqa: E402
from messaging.selectors import conversation_page, message_history  # noqa: E402
from messaging.services import direct_conversation_get_or_create, self_conversation_ensure  # noqa: E402


def _user(name: str) -> User:
    user, _ = User.objects.get_or_create(
        email=f"{name}@bench.invalid",
        defaults={"display_name": name, "email_verified": True, "password": "!bench"},
    )
    self_conversation_ensure(user=user)
    return user


def _fill(conversation: Conversation, a: User, b: User, count: int) -> float:
    """COUNT messages in one statement. Column expressions per model field, so a field added
    later without a value here fails loudly instead of inserting garbage."""
    q = connection.ops.quote_name
    expressions = {
        "public_id": "substr(md5(%(conv)s::text || ':' || g::text), 1, 24)",
        "conversation": "%(conv)s",
        "seq": "g",
        "rev": "g",  # a message never changed since its creation: its rev is its creation's
        "sender": "CASE WHEN g %% 2 = 0 THEN %(a)s ELSE %(b)s END",
        "kind": "'text'",
        "content": "'history message number ' || g::text || ', some ordinary chat text to give it size'",
        "client_message_id": "NULL",
        "created_at": "now() - ((%(count)s - g) * interval '1 second')",
    }
    columns, values = [], []
    for field in Message._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.name in expressions:
            values.append(expressions[field.name])
        elif field.null:
            values.append("NULL")
        else:
            raise RuntimeError(f"bench/history.py does not know how to fill Message.{field.name}")
        columns.append(q(field.column))
    sql = (
        f"INSERT INTO {q(Message._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM generate_series(1, %(count)s) AS g"
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"conv": conversation.pk, "a": a.pk, "b": b.pk, "count": count})
        Conversation.objects.filter(pk=conversation.pk).update(last_seq=count, last_rev=count)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {q(Message._meta.db_table)}")
    return time.perf_counter() - started


def _time(fn, iterations: int, warmup: int) -> dict:
    """Wall time per call, and this thread's CPU time per call (`cpu_*`): the machine may be
    shared, and CPU time is what a change to the selector moves."""
    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    for _ in range(iterations):
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        cpu.append((time.thread_time_ns() - started_cpu) / 1e6)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    cpu.sort()

    def at(values: list[float], p: float) -> float:
        return round(values[min(len(values) - 1, max(0, int(-(-p * len(values) // 100)) - 1))], 3)

    return {
        "count": len(samples),
        "mean": round(statistics.fmean(samples), 3),
        "p50": at(samples, 50),
        "p90": at(samples, 90),
        "p99": at(samples, 99),
        "max": round(samples[-1], 3),
        "cpu_p50": at(cpu, 50),
        "cpu_p99": at(cpu, 99),
    }


def _explain(call) -> tuple[str, list[dict]]:
    """Run `call` once capturing its SQL, then EXPLAIN ANALYZE each query it ran."""
    with CaptureQueriesContext(connection) as captured:
        call()
    text, plans = [], []
    # The selector sends the statements of one round trip together ("a; b"): each is explained.
    statements = [
        sql for query in captured.captured_queries for sql in re.split(r";\s+(?=SELECT\b)", query["sql"])
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            text.append(f"-- {sql}\n{plan}\n")
            on_messages = Message._meta.db_table in sql.split(" WHERE ")[0]
            plans.append(
                {
                    "sql": sql,
                    "on_messages": on_messages,
                    "uses_index": "Index Scan" in plan or "Index Only Scan" in plan,
                    "seq_scan": "Seq Scan" in plan,
                    "sort": "Sort" in plan,
                }
            )
    return "\n".join(text), plans


def main() -> None:
    messages, depth, page, iterations, warmup = (int(v) for v in sys.argv[1:6])
    out, plans_out = Path(sys.argv[6]), Path(sys.argv[7])
    a, b = _user("bhist_a"), _user("bhist_b")
    conversation, _partner, _created = direct_conversation_get_or_create(user=a, other_user_id=b.public_id)
    conversation.refresh_from_db()
    fill_seconds = 0.0
    if conversation.last_seq < messages:
        Message.objects.filter(conversation=conversation).delete()
        fill_seconds = _fill(conversation, a, b, messages)
        conversation.refresh_from_db()
    last = conversation.last_seq
    before_deep = last - depth + 1
    chat = conversation.public_id

    # Correctness first: the pages hold what keyset pagination promises.
    _conv, newest = message_history(user=a, conversation_id=chat, limit=page)
    _conv, deep = message_history(user=a, conversation_id=chat, before=before_deep, limit=page)
    assert [m.seq for m in newest] == list(range(last, last - page, -1)), "newest page is wrong"
    assert [m.seq for m in deep] == list(range(before_deep - 1, before_deep - 1 - page, -1)), (
        "deep page is wrong"
    )

    table = Message._meta.db_table
    floor_sql = (
        f"SELECT id, public_id, seq, sender_id, content, created_at FROM {table} "  # noqa: S608
        "WHERE conversation_id = %s AND seq < %s ORDER BY seq DESC LIMIT %s"
    )

    def floor(before: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(floor_sql, [conversation.pk, before, page])
            cursor.fetchall()

    results = {
        "messages": last,
        "depth": depth,
        "page": page,
        "fill_seconds": round(fill_seconds, 2),
        "selector": "messaging.selectors.message_history",
        "newest": _time(
            lambda: message_history(user=a, conversation_id=chat, limit=page), iterations, warmup
        ),
        "deep": _time(
            lambda: message_history(user=a, conversation_id=chat, before=before_deep, limit=page),
            iterations,
            warmup,
        ),
        "page_newest": _time(
            lambda: conversation_page(user=a, conversation_id=chat, kind="direct", limit=page),
            iterations,
            warmup,
        ),
        "page_deep": _time(
            lambda: conversation_page(
                user=a, conversation_id=chat, kind="direct", before=before_deep, limit=page
            ),
            iterations,
            warmup,
        ),
        "floor_newest": _time(lambda: floor(last + 1), iterations, warmup),
        "floor_deep": _time(lambda: floor(before_deep), iterations, warmup),
    }
    newest_text, newest_plans = _explain(lambda: message_history(user=a, conversation_id=chat, limit=page))
    deep_text, deep_plans = _explain(
        lambda: message_history(user=a, conversation_id=chat, before=before_deep, limit=page)
    )
    plans_out.write_text(
        f"# message_history, newest page of {page} ({last} messages)\n\n{newest_text}\n"
        f"# message_history, page {depth} messages deep (before={before_deep})\n\n{deep_text}"
    )
    message_plans = [p for p in newest_plans + deep_plans if p["on_messages"]]
    results["plans"] = {"newest": newest_plans, "deep": deep_plans}
    results["message_queries_use_index"] = bool(message_plans) and all(
        p["uses_index"] and not p["seq_scan"] for p in message_plans
    )
    results["queries_per_call"] = len(newest_plans)  # statements
    with CaptureQueriesContext(connection) as captured:
        message_history(user=a, conversation_id=chat, limit=page)
    results["round_trips_per_call"] = len(captured.captured_queries)
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
