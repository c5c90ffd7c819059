"""The bus: the one way domain events leave the core, and the one place group names are built.

`publish_on_commit` (services), `publish_now` (state never stored: typing, presence), group
names (`groups`), and the channel-layer transport (`transport`). Apps and the gateway import it;
it imports no app.
"""

from .publish import (
    PublishItem,
    publish_many_committed,
    publish_many_on_commit,
    publish_now,
    publish_on_commit,
)

__all__ = [
    "PublishItem",
    "publish_many_committed",
    "publish_many_on_commit",
    "publish_now",
    "publish_on_commit",
]
