"""CZ Messenger's room metadata: a Django app owned by the protocol (label `czmessenger`).

Why a protocol-owned app and not a generic "conversation attributes" table in `messaging`: the
metadata is one protocol's (a buyer and a seller side, a shop, per-side pins, per-side soft
deletes with a history cut-off, a block by role), it has constraints and queries of its own
(rooms of a user by side, sorted by the side's pin and last message), and no other protocol
reads it. A key/value table would give up the constraints and make every query a pivot. The
core stays the source of truth for everything shared: the conversation (a direct conversation
of the two identities), its messages and its read pointers (unseen counts come from them).
Apps never import this package: it sits above `messaging` and `accounts`, like the gateway.
"""
