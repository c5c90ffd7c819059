"""Bench data, written straight into the bench database through the product's own models and
services. Run by bench/run.py as a Django script (DJANGO_SETTINGS_MODULE, DATABASE_URL and
SECRET_KEY come from its environment; the servers use the same SECRET_KEY to verify tokens).

    seed.py direct N OUT.json   N pairs of verified users, one direct conversation per pair
    seed.py idle N OUT.json     N verified users with self conversations and access tokens
    seed.py group N OUT.json [presence-hidden]
                                one group of N members (groups.services.group_create), a token
                                each; presence-hidden: every member hides their presence
"""

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from accounts.models import LoginSession, User  # noqa: E402
from accounts.tokens import access_token_for, tokens_issue  # noqa: E402
from groups.services import group_create  # noqa: E402
from messaging.models import Conversation, Membership  # noqa: E402
from messaging.selectors import self_key  # noqa: E402
from messaging.services import direct_conversation_get_or_create, self_conversation_ensure  # noqa: E402

# Bench passwords are never used to log in: tokens are issued directly.
UNUSABLE = "!bench"


def _users(prefix: str, count: int) -> list[User]:
    """Bulk-create verified users `<prefix>0..count-1` (or fetch them if they exist)."""
    emails = [f"{prefix}{i}@bench.invalid" for i in range(count)]
    existing = {u.email: u for u in User.objects.filter(email__in=emails)}
    missing = [
        User(email=e, display_name=f"{prefix}{i}", email_verified=True, password=UNUSABLE)
        for i, e in enumerate(emails)
        if e not in existing
    ]
    User.objects.bulk_create(missing, batch_size=2000)
    by_email = {u.email: u for u in User.objects.filter(email__in=emails)}
    return [by_email[e] for e in emails]


def seed_direct(pairs: int) -> dict:
    """`pairs` sender/receiver pairs, each with a direct conversation and a token pair."""
    senders, receivers = _users("bsend", pairs), _users("brecv", pairs)
    out = []
    for sender, receiver in zip(senders, receivers, strict=True):
        self_conversation_ensure(user=sender)
        self_conversation_ensure(user=receiver)
        conversation, _partner, _created = direct_conversation_get_or_create(
            user=sender, other_user_id=receiver.public_id
        )
        out.append(
            {
                "chat": conversation.public_id,
                "sender": sender.public_id,
                "receiver": receiver.public_id,
                "sender_token": tokens_issue(user=sender).access,
                "receiver_token": tokens_issue(user=receiver).access,
            }
        )
    return {"pairs": out}


def _users_with_tokens(prefix: str, count: int) -> tuple[list[User], list[str]]:
    """`count` verified users, each with a self conversation, a login session and an access
    token. Bulk: sessions are bulk-created, then access tokens are signed for them
    (`access_token_for`, no per-token row; `tokens_issue` would add an OutstandingToken row each
    and take ~10x longer for the same connection behaviour)."""
    users = _users(prefix, count)
    with transaction.atomic():
        have_self = set(
            Conversation.objects.filter(unique_key__in=[self_key(u) for u in users]).values_list(
                "unique_key", flat=True
            )
        )
        todo = [u for u in users if self_key(u) not in have_self]
        convs = Conversation.objects.bulk_create(
            [Conversation(kind=Conversation.Kind.SELF, unique_key=self_key(u), created_by=u) for u in todo],
            batch_size=2000,
        )
        Membership.objects.bulk_create(
            [
                Membership(conversation=c, user=u, role=Membership.Role.OWNER)
                for c, u in zip(convs, todo, strict=True)
            ],
            batch_size=2000,
        )
        sessions = LoginSession.objects.bulk_create([LoginSession(user=u) for u in users], batch_size=2000)
    tokens = [access_token_for(user=u, sid=s.sid)[0] for u, s in zip(users, sessions, strict=True)]
    return users, tokens


def seed_idle(count: int) -> dict:
    """`count` users with self conversations and access tokens (see _users_with_tokens)."""
    _users_list, tokens = _users_with_tokens("bidle", count)
    return {"tokens": tokens}


def idle_tokens(count: int) -> list[str]:
    """Access tokens of `count` of the idle scenario's users with a live login session, seeded
    first if there are fewer (the in-process handshake tools)."""
    sessions = list(
        LoginSession.objects.filter(
            revoked_at__isnull=True, user__is_active=True, user__email__startswith="bidle"
        )
        .select_related("user")
        .order_by("pk")[:count]
    )
    if len(sessions) < count:
        seed_idle(count)
        return idle_tokens(count)
    return [access_token_for(user=s.user, sid=s.sid)[0] for s in sessions]


def seed_group(count: int, presence_hidden: bool = False) -> dict:
    """One group of `count` members created through `group_create` (the first user owns it; its
    "created the group" system message takes seq 1), and an access token for every member.
    `last_seq` is the group's allocator after seeding: the first message of the run gets
    last_seq + 1, and every seq up to it is history that is never delivered live.

    `presence_hidden`: the privacy setting `accounts.services.user_settings_update` sets, written
    in bulk (nobody is connected yet, so there is nobody to notify): the product then publishes
    no presence for these members (see scenarios.py, group)."""
    users, tokens = _users_with_tokens("bgroup", count)
    User.objects.filter(pk__in=[u.pk for u in users]).update(presence_hidden=presence_hidden)
    conversation = group_create(
        user=users[0], name="bench group", member_ids=[u.public_id for u in users[1:]]
    )
    conversation.refresh_from_db()
    members = Membership.objects.filter(conversation=conversation, left_at__isnull=True).count()
    if members != count:
        raise SystemExit(f"group has {members} current members, expected {count}")
    return {
        "group": conversation.public_id,
        "last_seq": conversation.last_seq,
        "presence_hidden": presence_hidden,
        "members": [u.public_id for u in users],
        "tokens": tokens,
    }


def main() -> None:
    kind, count, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    started = time.perf_counter()
    if kind == "group":
        data = seed_group(count, presence_hidden="presence-hidden" in sys.argv[4:])
    else:
        data = {"direct": seed_direct, "idle": seed_idle}[kind](count)
    data["seconds"] = round(time.perf_counter() - started, 2)
    out.write_text(json.dumps(data))


if __name__ == "__main__":
    main()
