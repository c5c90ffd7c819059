"""The Socket.IO manager with each session's rooms indexed (gateway/transports/socketio.py,
`GatewayManager`): a disconnect leaves every room the session was in and no other session's,
whatever rooms it entered and left meanwhile, as python-socketio's own manager does. The live
tests of every Engine.IO 4 protocol run it with real clients."""

from socketio.async_manager import AsyncManager

from gateway.transports.socketio import GatewayManager, GatewayServer

NS = "/chat"


class _Eio:
    def __init__(self) -> None:
        self.count = 0

    def generate_id(self) -> str:
        self.count += 1
        return f"sid{self.count}"


class _Server:
    def __init__(self) -> None:
        self.eio = _Eio()

    class packet_class:  # noqa: N801 - what python-socketio's manager reads
        json = None


async def _connected(manager, eio_sid: str, namespace: str = NS) -> str:
    sid = await manager.pre_connect(eio_sid, namespace)
    await manager.connect(sid, namespace)
    return sid


def _manager(cls=GatewayManager):
    manager = cls()
    manager.set_server(_Server())
    return manager


def _rooms(manager) -> dict:
    """Every room of every namespace with its members, for comparing two managers."""
    return {
        namespace: {room: dict(members) for room, members in rooms.items()}
        for namespace, rooms in manager.rooms.items()
    }


async def _script(manager) -> list[str]:
    """The same sequence of joins, leaves, closes and disconnects on any manager."""
    a = await _connected(manager, "eio-a")
    b = await _connected(manager, "eio-b")
    c = await _connected(manager, "eio-c", "/other")
    for sid, room in [
        (a, "user.1"),
        (a, "conv.9"),
        (a, "conv.9"),
        (b, "user.2"),
        (b, "conv.9"),
        (c, "user.1"),
    ]:
        await manager.enter_room(sid, NS if sid != c else "/other", room)
    await manager.leave_room(a, NS, "conv.9")
    await manager.enter_room(a, NS, "conv.7")
    await manager.close_room("conv.7", NS)
    await manager.enter_room(a, NS, "conv.8")
    manager.pre_disconnect(a, NS)
    await manager.disconnect(a, NS)
    return [a, b, c]


async def test_a_disconnect_leaves_the_same_rooms_as_python_socketio():
    ours, theirs = _manager(), _manager(AsyncManager)
    await _script(ours)
    await _script(theirs)
    assert _rooms(ours) == _rooms(theirs)
    assert ours.pending_connect == theirs.pending_connect == {}
    assert ours.pending_disconnect == theirs.pending_disconnect == {}


async def test_a_disconnected_session_is_in_no_room_and_the_others_keep_theirs():
    manager = _manager()
    a, b, c = await _script(manager)
    everywhere = [room for rooms in manager.rooms.values() for room in rooms.values()]
    assert not any(a in room for room in everywhere)
    assert not manager.is_connected(a, NS)
    assert sorted(r for r in manager.get_rooms(b, NS)) == sorted([b, "user.2", "conv.9"])
    assert [sid for sid, _ in manager.get_participants(NS, "conv.9")] == [b]
    assert manager.get_rooms(c, "/other") == [c, "user.1"]
    assert manager.joined == {NS: {b: ["user.2", "conv.9"]}, "/other": {c: ["user.1"]}}


async def test_the_last_session_leaving_removes_its_namespace_and_index():
    manager = _manager()
    sid = await _connected(manager, "eio-a")
    await manager.enter_room(sid, NS, "user.1")
    manager.pre_disconnect(sid, NS)
    await manager.disconnect(sid, NS)
    assert manager.rooms == {}
    assert manager.joined == {}
    await manager.disconnect(sid, NS)  # twice: nothing left to do, no error


async def test_a_refused_connect_is_forgotten_while_still_pending():
    manager = _manager()
    sid = await manager.pre_connect("eio-a", NS)
    await manager.disconnect(sid, NS, ignore_queue=True)
    assert manager.rooms == {}
    assert manager.pending_connect == {}


def test_the_gateway_server_uses_it():
    server = GatewayServer(event_limit=1000, connect_timeout=5, packet_rate=(10, 10), async_mode="asgi")
    assert isinstance(server.manager, GatewayManager)


async def test_a_rooms_members_are_what_python_socketio_counts_as_its_participants():
    manager = _manager()
    a, b, c = await _script(manager)
    for namespace, room in ((NS, "conv.9"), (NS, "user.2"), (NS, b), ("/other", "user.1"), (NS, None)):
        assert list(manager.members(namespace, room)) == list(manager.get_participants(namespace, room))
    assert list(manager.members(NS, "conv.404")) == [] == list(manager.get_participants(NS, "conv.404"))
    assert list(manager.members("/nobody", "conv.9")) == []
