"""Emit.user: an emit meant for one user only, on a user's group and on a conversation's group."""

from gateway.audience import Emit, Local, deliveries


def test_an_emit_for_one_user_reaches_only_that_users_connections():
    local = Local(by_user={"A": {"a1"}, "B": {"b1", "b2"}}, receipts_off=set(), lacking={})
    emit = Emit("user_status_change", {}, user="B")
    assert deliveries("u.A", {"type": "x"}, [emit], local) == []
    ((_, to_b),) = deliveries("u.B", {"type": "x"}, [emit], local)
    assert to_b.only is None
    ((_, in_room),) = deliveries("c.C1", {"type": "x"}, [emit], local)
    assert in_room.only == frozenset({"b1", "b2"})
