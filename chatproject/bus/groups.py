"""The only place bus group names and local room names are built.

A bus group is a channel-layer group. Every process subscribes its one channel to the groups of
the users connected to it (`user_group`) and of the group conversations they belong to
(`conversation_group`); events are published to those groups. Socket.IO rooms inside a process
use the same strings, so a bus target maps to a local room without translation.
"""

USER_PREFIX = "u."
CONVERSATION_PREFIX = "c."
APP_PREFIX = "a."
# Every server process's bridge holds this group from its start: nothing is published to it; the
# number of subscribers of its Redis channel (PUBSUB NUMSUB) is the number of processes whose bus
# subscription is alive (chat_bus_subscribers).
PROCESSES_GROUP = "procs"


def user_group(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def conversation_group(conversation_id: str) -> str:
    return f"{CONVERSATION_PREFIX}{conversation_id}"


def app_group(app_id: str) -> str:
    """Every live connection of a tenant app's users (app-wide revocation)."""
    return f"{APP_PREFIX}{app_id}"
