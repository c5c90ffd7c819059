"""What a tenant backend does beyond its users (those are accounts.tenancy): create a direct or
group conversation among its users, and post a system message in one of them. Composed from the
messaging and groups services, so the same rules and events apply as for any other caller."""

from __future__ import annotations

from django.db import transaction

from accounts.models import App, User
from accounts.tenancy import external_user_get, external_user_upsert, registered_token_set
from chatproject.core.errors import ApplicationError, ErrorCode
from chatproject.core.ids import is_public_id
from chatproject.core.text import is_storable
from groups.services import group_create
from messaging.models import Conversation, Membership, Message
from messaging.services import direct_conversation_get_or_create, system_message_post

SYSTEM_TEXT_MAX_LENGTH = 2000


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(ErrorCode.INVALID, message, {"field": field})


def tenant_conversation_create(
    *, app: App, kind: object, member_ids: object, title: object = None, created_by: object = None
) -> tuple[Conversation, bool]:
    """A direct conversation between two of the app's users (the existing one if any), or a
    group of the app's users owned by `created_by` (default: the first member). Members are
    the app's external ids; an id the app does not have is not found. Returns (conversation,
    created)."""
    if kind not in ("direct", "group"):
        raise _invalid("kind", "kind is direct or group.")
    if not isinstance(member_ids, list) or not member_ids or not all(isinstance(m, str) for m in member_ids):
        raise _invalid("members", "members is a list of user ids.")
    members = [external_user_get(app=app, external_id=m) for m in dict.fromkeys(member_ids[:1001])]
    if kind == "direct":
        if len(members) != 2:
            raise _invalid("members", "A direct conversation has exactly two members.")
        conversation, _other, created = direct_conversation_get_or_create(
            user=members[0], other_user_id=members[1].public_id
        )
        return conversation, created
    owner = external_user_get(app=app, external_id=created_by) if created_by is not None else members[0]
    conversation = group_create(
        user=owner, name=title, member_ids=[m.public_id for m in members if m.pk != owner.pk]
    )
    return conversation, True


def tenant_conversation_get(*, app: App, conversation_id: object) -> Conversation:
    """A direct or group conversation of the app's users; not_found for any other."""
    found = None
    if is_public_id(conversation_id):
        found = (
            Conversation.objects.filter(
                public_id=conversation_id, kind__in=(Conversation.Kind.DIRECT, Conversation.Kind.GROUP)
            )
            .filter(pk__in=Membership.objects.filter(user__app=app).values("conversation_id"))
            .first()
        )
    if found is None:
        raise ApplicationError(
            ErrorCode.NOT_FOUND, "No such conversation in this app.", {"field": "conversation_id"}
        )
    return found


def tenant_system_message_post(*, app: App, conversation_id: object, text: object) -> Message:
    """Post a system message (no sender) in one of the app's conversations; delivered live and
    kept in history like the server's own system messages."""
    if not isinstance(text, str) or not text.strip() or len(text) > SYSTEM_TEXT_MAX_LENGTH:
        raise _invalid("text", f"text must be 1 to {SYSTEM_TEXT_MAX_LENGTH} characters.")
    if not is_storable(text):
        raise _invalid("text", "text contains characters that cannot be stored.")
    conversation = tenant_conversation_get(app=app, conversation_id=conversation_id)
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        return system_message_post(conversation=conversation, actor=None, text=text.strip())


def tenant_user_register(
    *, app: App, external_id: object, first_name: object, last_name: object = "", token: object = None
) -> tuple[User, bool]:
    """Seed 003's `POST /user`: create or update one of the app's users (display name "first
    last") and, when a token is given, register it as the user's token, replacing the previous
    one (whose live connections close). Returns (user, created). Atomic: a bad token stores
    nothing."""
    parts = [p.strip() for p in (first_name, last_name) if isinstance(p, str) and p.strip()]
    if not isinstance(first_name, str) or not first_name.strip():
        raise _invalid("firstName", "firstName is required.")
    with transaction.atomic():
        user, created = external_user_upsert(app=app, external_id=external_id, name=" ".join(parts))
        if not user.is_active:  # deleted (DELETE /user/{id}) or deactivated: not brought back
            raise ApplicationError(ErrorCode.NOT_FOUND, "ChatUser Not Found")
        if token is not None and token != "":
            user = registered_token_set(app=app, external_id=user.external_id, token=token)
    return user, created
