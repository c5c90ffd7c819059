"""Text EVENT packets on the Engine.IO 4 transport (GatewayServer): the shortcut past
python-socketio's decode and dispatch layers (`GatewayServer._text_event`) against
python-socketio's own path, packet by packet, in-process below python-engineio.

Each packet goes to two servers with the same handlers: one whose namespaces take the shortcut
(`on_events`, as the gateway's transport registers them) and one that takes python-socketio's way
(its "*" handler only). Both must call the same handler with the same arguments, send the same
acks, and fail the same way on malformed input; the first must have taken the shortcut for every
packet it covers. The live tests (test_malformed_live.py, test_limits_live.py and every protocol's
live tests) run the same code with real clients."""

import asyncio

import pytest

from gateway import lanes
from gateway.transports import safe_json
from gateway.transports.socketio import GatewayServer

OTHER = "/other"  # a second namespace with the shortcut
PLAIN = "/plain"  # a namespace whose events go python-socketio's way only

# Packets the shortcut handles: (packet, namespace, event, arguments, ack id).
COVERED = [
    ('2["send",{"a":1}]', "/", "send", [{"a": 1}], None),
    ('25["send",{"n":"é","l":[1,2.5,null,true]}]', "/", "send", [{"n": "é", "l": [1, 2.5, None, True]}], 5),
    ('20["x"]', "/", "x", [], 0),
    ('2007["x",1,"two"]', "/", "x", [1, "two"], 7),  # leading zeros, as python-socketio reads them
    ('2/,3["x"]', "/", "x", [], 3),  # the default namespace named
    ('2/other,12["y",{"b":[]}]', OTHER, "y", [{"b": []}], 12),
    ('2/other,["y"]', OTHER, "y", [], None),
    ('2["\\u00e9v\\u00e9nement",null]', "/", "événement", [None], None),
    ('2["connecting"]', "/", "connecting", [], None),  # not a reserved name, only close to one
    ("2" + "9" * 15 + '["x"]', "/", "x", [], 999999999999999),
]

# Packets the shortcut leaves to python-socketio (well-formed or not): the same outcome either way.
LEFT = [
    "2",
    "25",
    "2[",
    '2["x"',
    '2["x"] trailing',
    '2{"a":1}',
    "2[]",
    "2[1]",
    '2[null,"x"]',
    '2[["a"],{}]',
    '2[{"a":1}]',
    '2"xy"',  # python-socketio takes a string for the event's name and arguments: "x", "y"
    '2 ["x"]',
    '21-["x"]',  # an attachment count on a text EVENT: python-socketio reads it as one
    '2/other?x=1,["y"]',  # a namespace with a query
    '2/other["y"]',  # a namespace without its comma
    '2/nope,["y"]',  # a namespace nobody mounted
    '2/plain,4["z",1]',  # a namespace without the shortcut
    "2" + "9" * 16 + '["x"]',  # an ack id of 16 digits
    "2" + "9" * 101 + '["x"]',  # an ack id python-socketio refuses
    '2\u00b2["x"]',  # a superscript digit: `isdigit`, not a number
    '2\u0663["x"]',  # an Arabic-Indic digit: `isdigit` and a number to python-socketio
    "2" + "[" * 5000,  # nested past the parser's recursion limit
    '2["connect",{}]',  # reserved names and names with handlers of their own
    '2["disconnect"]',
    '2["own",1]',
    '21["own",1]',
]


class Engine:
    """python-engineio's server with its sends recorded; no sockets behind it."""

    def __init__(self, sio: GatewayServer) -> None:
        self.sent: list[str | bytes] = []
        sio.eio.send = self.send

    async def send(self, eio_sid: str, data) -> None:
        self.sent.append(data)


def _handlers(namespace: str, calls: list):
    """A namespace's handler of every event, as the shortcut calls it and as python-socketio does."""

    async def event(sid, eio_sid, name, args):
        calls.append(("shortcut", namespace, name, args))
        return [{"ok": True, "echo": args}] if name != "quiet" else None

    async def any_event(name, sid, *args):
        calls.append(("socketio", namespace, name, list(args)))
        return ({"ok": True, "echo": list(args)},) if name != "quiet" else None

    return event, any_event


async def _server(*, shortcut: bool) -> tuple[GatewayServer, Engine, list]:
    sio = GatewayServer(
        event_limit=100_000,
        connect_timeout=10,
        packet_rate=(10_000, 10_000),
        async_handlers=False,  # as gateway/asgi.py
        async_mode="asgi",
        json=safe_json,
        logger=False,
        engineio_logger=False,
    )
    engine = Engine(sio)
    calls: list = []
    for namespace in ("/", OTHER, PLAIN):
        event, any_event = _handlers(namespace, calls)
        sio.on("connect", lambda sid, environ, auth=None: True, namespace=namespace)
        sio.on("disconnect", lambda sid, reason=None: None, namespace=namespace)
        sio.on("own", lambda sid, *args: calls.append(("own", args)) or "mine", namespace=namespace)
        if shortcut and namespace != PLAIN:
            sio.on_events(namespace, any_event, event)
        else:
            sio.on("*", any_event, namespace=namespace)
    await sio._handle_eio_connect("e1", {})
    for namespace in ("/", OTHER, PLAIN):
        await sio._handle_eio_message("e1", "0" if namespace == "/" else f"0{namespace},")
    engine.sent.clear()
    return sio, engine, calls


async def _outcome(packet: str, *, shortcut: bool) -> tuple[list, list, type | None, dict]:
    sio, engine, calls = await _server(shortcut=shortcut)
    error = None
    try:
        await sio._handle_eio_message("e1", packet)
    except Exception as exc:  # the transport's own handling: not expected to raise at all
        error = type(exc)
    return calls, engine.sent, error, dict(sio.malformed)


@pytest.mark.parametrize(("packet", "namespace", "event", "args", "ack_id"), COVERED)
async def test_a_text_event_takes_the_shortcut_with_what_python_socketio_would_decode(
    packet, namespace, event, args, ack_id
):
    calls, sent, error, malformed = await _outcome(packet, shortcut=True)
    assert calls == [("shortcut", namespace, event, args)]
    prefix = "3" + ("" if namespace == "/" else namespace + ",") + ("" if ack_id is None else str(ack_id))
    expected_ack = [prefix + safe_json.dumps([{"ok": True, "echo": args}], separators=(",", ":"))]
    assert sent == ([] if ack_id is None else expected_ack)
    assert error is None and malformed == {}
    # python-socketio's own way: the same handler call, the same ack on the wire.
    plain_calls, plain_sent, _, _ = await _outcome(packet, shortcut=False)
    assert plain_calls == [("socketio", namespace, event, args)]
    assert plain_sent == sent


@pytest.mark.parametrize("packet", LEFT)
async def test_what_the_shortcut_does_not_cover_ends_as_python_socketio_ends_it(packet):
    calls, sent, error, malformed = await _outcome(packet, shortcut=True)
    plain_calls, plain_sent, plain_error, plain_malformed = await _outcome(packet, shortcut=False)
    assert not any(call[0] == "shortcut" for call in calls)
    assert [c[1:] for c in calls] == [c[1:] for c in plain_calls]
    assert sent == plain_sent
    assert error is None and plain_error is None
    assert malformed == plain_malformed


async def test_malformed_text_events_are_counted_once_each_and_the_fifth_closes_the_session():
    sio, engine, calls = await _server(shortcut=True)
    closed: list[str] = []

    async def disconnect(eio_sid):
        closed.append(eio_sid)

    sio.eio.disconnect = disconnect
    for packet in ("2[", '2{"a":1}', "2[]", '2[["a"],{}]'):
        await sio._handle_eio_message("e1", packet)
    assert sio.malformed == {"e1": 4} and closed == []
    await sio._handle_eio_message("e1", "2" + "[" * 5000)
    assert closed == ["e1"] and calls == [] and engine.sent == []


async def test_an_ack_with_no_answer_is_empty_and_an_event_without_id_gets_none():
    sio, engine, calls = await _server(shortcut=True)
    await sio._handle_eio_message("e1", '29["quiet"]')
    await sio._handle_eio_message("e1", '2["quiet"]')
    assert engine.sent == ["39[]"]
    assert calls == [("shortcut", "/", "quiet", [])] * 2


async def test_an_event_of_a_session_not_in_the_namespace_is_dropped():
    sio, engine, calls = await _server(shortcut=True)
    await sio._handle_eio_connect("e2", {})  # an Engine.IO session that joined no namespace
    await sio._handle_eio_message("e2", '21["x"]')
    assert calls == [] and engine.sent == []


async def test_a_namespace_whose_catch_all_was_replaced_goes_python_socketios_way():
    sio, engine, calls = await _server(shortcut=True)

    async def replaced(name, sid, *args):
        calls.append(("replaced", name, list(args)))

    sio.on("*", replaced)
    await sio._handle_eio_message("e1", '23["x",1]')
    assert calls == [("replaced", "x", [1])] and engine.sent == ["33[]"]


async def test_a_cancelled_handler_is_answered_as_python_socketio_answers_it():
    sio, engine, calls = await _server(shortcut=True)

    async def cancelled(sid, eio_sid, name, args):
        raise asyncio.CancelledError

    any_event, _event, lane = sio.event_handlers["/"]
    sio.event_handlers["/"] = (any_event, cancelled, lane)
    await sio._handle_eio_message("e1", '24["x"]')
    assert engine.sent == ["34[]"]


async def test_the_oversize_mark_is_set_while_a_shortcut_event_is_handled():
    sio, engine, calls = await _server(shortcut=True)
    seen: list[bool] = []

    async def event(sid, eio_sid, name, args):
        seen.append(eio_sid in sio.oversize)
        return None

    any_event, _event, lane = sio.event_handlers["/"]
    sio.event_handlers["/"] = (any_event, event, lane)
    sio.event_limit = 30
    await sio._handle_eio_message("e1", '2["x","' + "a" * 40 + '"]')
    await sio._handle_eio_message("e1", '2["x","a"]')
    assert seen == [True, False] and sio.oversize == set()


class Session:
    """An Engine.IO session as the ack sees it: open or closed, its packets recorded."""

    def __init__(self, closed: bool = False) -> None:
        self.closed = closed
        self.packets: list = []

    async def send(self, pkt) -> None:
        self.packets.append((pkt.packet_type, pkt.data))


async def test_an_ack_goes_to_its_open_session_and_a_closed_one_through_python_engineio():
    sio, engine, calls = await _server(shortcut=True)
    session = sio.eio.sockets["e1"] = Session()
    await sio._handle_eio_message("e1", '21["x",1]')
    assert session.packets == [(4, '31[{"ok":true,"echo":[1]}]')]  # Engine.IO MESSAGE
    assert engine.sent == []
    session.closed = True
    await sio._handle_eio_message("e1", '22["x",2]')
    assert engine.sent == ['32[{"ok":true,"echo":[2]}]'] and len(session.packets) == 1


async def test_a_pipelined_event_frees_the_reader_once_parked_and_acks_stay_in_order():
    sio, engine, calls = await _server(shortcut=True)
    lane = lanes.Lane(16)
    batch: dict[int, asyncio.Future] = {}

    async def event(sid, eio_sid, name, args):
        n = args[0]
        if n < 0:  # refused before it is queued
            return [{"ok": False, "n": n}]
        batch[n] = asyncio.get_running_loop().create_future()
        lanes.parked()  # queued in the batcher
        await batch[n]
        return [{"ok": True, "n": n}]

    any_event = sio.event_handlers["/"][0]
    sio.event_handlers["/"] = (any_event, event, lambda sid, name: lane if name == "send" else None)
    for packet in ('21["send",1]', '22["send",2]'):
        await asyncio.wait_for(sio._handle_eio_message("e1", packet), 1)  # not held by the batch
    # Refused before it is queued: the reader waits for it, and its ack waits for those before it.
    refused = asyncio.ensure_future(sio._handle_eio_message("e1", '23["send",-3]'))
    for _ in range(5):
        await asyncio.sleep(0)
    assert sorted(batch) == [1, 2] and engine.sent == [] and not refused.done()
    batch[2].set_result(None)  # the later batch answers first: its ack still goes second
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.sent == []
    batch[1].set_result(None)
    await asyncio.wait_for(refused, 1)
    assert engine.sent == ['31[{"ok":true,"n":1}]', '32[{"ok":true,"n":2}]', '33[{"ok":false,"n":-3}]']
    assert not lane.entries


async def test_an_oversize_event_is_not_pipelined():
    sio, engine, calls = await _server(shortcut=True)
    asked: list[str] = []

    def lane_for(sid, name):
        asked.append(name)
        return lanes.Lane(16)

    sio.event_handlers["/"] = (*sio.event_handlers["/"][:2], lane_for)
    sio.event_limit = 30
    await sio._handle_eio_message("e1", '21["send","' + "a" * 40 + '"]')
    assert asked == [] and len(engine.sent) == 1  # handled in place, its oversize mark seen
