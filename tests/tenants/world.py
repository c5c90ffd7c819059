"""Three realms side by side for the isolation matrix: app A, app B and the first-party realm,
each with two users, a direct chat, a group, a message in each and an upload."""

import io
from dataclasses import dataclass, field

from accounts import tenancy
from accounts.models import User
from accounts.tokens import tokens_issue
from groups.services import group_create
from messaging.models import Attachment, Conversation, Membership, Message, Reaction
from messaging.services import direct_conversation_get_or_create, message_send, self_conversation_ensure
from messaging.uploads import upload_create

from .helpers import sign

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@dataclass
class Realm:
    name: str
    app: object | None
    users: list[User]
    tokens: list[str]  # a Bearer / socket token per user
    direct: Conversation
    group: Conversation
    direct_message: Message
    group_message: Message
    upload: Attachment
    ids: list[str] = field(default_factory=list)  # every public id and name of the realm

    @property
    def namespace(self) -> str:
        return "/" if self.app is None else "/apps"


def realm(name: str, *, tenant: bool) -> Realm:
    if tenant:
        app = tenancy.app_create(name=f"App {name}")
        users = [
            tenancy.external_user_upsert(app=app, external_id=f"{name}-{i}", name=f"{name}-user-{i}")[0]
            for i in (1, 2)
        ]
        tokens = [sign(app, user.external_id, exp_in=3600) for user in users]
    else:
        app = None
        users = [
            User.objects.create_user(
                email=f"{name}{i}@example.com",
                password="pw-12345678",
                display_name=f"{name}-user-{i}",
                email_verified=True,
            )
            for i in (1, 2)
        ]
        for user in users:
            self_conversation_ensure(user=user)
        tokens = [tokens_issue(user=user).access for user in users]
    owner, other = users
    direct, _, _ = direct_conversation_get_or_create(user=owner, other_user_id=other.public_id)
    group = group_create(user=owner, name=f"{name} group", member_ids=[other.public_id])
    direct_message, _ = message_send(
        user=other, conversation_id=direct.public_id, content=f"{name} secret direct"
    )
    group_message, _ = message_send(
        user=other, conversation_id=group.public_id, content=f"{name} secret group"
    )
    upload = upload_create(user=other, file=io.BytesIO(PDF), name="doc.pdf", size=len(PDF))
    found = Realm(name, app, users, tokens, direct, group, direct_message, group_message, upload)
    found.ids = [
        *(u.public_id for u in users),
        *(u.display_name for u in users),
        direct.public_id,
        group.public_id,
        direct_message.public_id,
        group_message.public_id,
        upload.public_id,
        f"{name} secret",
    ]
    return found


def counts() -> tuple[int, ...]:
    """What a refused call must not have changed."""
    return (
        Conversation.objects.count(),
        Membership.objects.count(),
        Message.objects.count(),
        Reaction.objects.count(),
        Attachment.objects.filter(removed_at__isnull=True).count(),
        User.objects.count(),
    )


def leaked(text: str, target: Realm, sent: str = "") -> list[str]:
    """The other realm's ids and names found in an answer, except those the caller sent (an
    error may name the id it did not find)."""
    return [value for value in target.ids if value in text and value not in sent]
