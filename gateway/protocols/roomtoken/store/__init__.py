"""Seed 002's rooms: a Django app owned by the protocol (label `roomtoken`).

A room is a client-chosen `roomToken` in one namespace (`customer` or `artisans`) of one tenant
app, naming one conversation of two parties, a customer and a vendor. The conversation is a
direct conversation of its own (a pair may have many rooms, each with its own history) that
started as a core chat request (`messaging.services.chat_request_create(distinct=False)`):
the room's creator requests, the other party accepts. Everything shared lives in the core (the
conversation, its messages, the request, read pointers); this row holds only what the wire
names a room by. Apps never import this package.
"""
