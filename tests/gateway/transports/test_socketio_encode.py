"""Socket.IO packets the gateway encodes itself (`encode_packet`: fan-outs and acks): the same
text python-socketio's `Packet.encode` writes, and python-socketio's own packet (binary, or its
error) for payloads JSON cannot encode."""

import datetime

import pytest
from socketio import packet

from gateway.transports import safe_json
from gateway.transports.socketio import GatewayServer, encode_packet


class Packet(packet.Packet):
    json = safe_json  # what the gateway's server gives its packets (gateway/asgi.py)


@pytest.mark.parametrize(
    ("packet_type", "data", "namespace", "id"),
    [
        (
            packet.EVENT,
            ["receive-personal-message", {"ChatId": "c", "Content": "héllo ✓", "Seq": 3}],
            "/",
            None,
        ),
        (packet.EVENT, ["x", {"a": [1, 2.5, None, True, {"b": "</script>"}]}], None, None),
        (packet.EVENT, ["x", "\u2028 \ud83d\ude00"], "/czm", None),
        (packet.ACK, [{"ok": True, "data": {"Id": "m", "Duplicate": False}}], "/", 12),
        (packet.ACK, [], "/", 0),
        (packet.ACK, [None], "/other", 7),
    ],
)
def test_text_packets_are_what_python_socketio_writes(packet_type, data, namespace, id):
    expected = Packet(packet_type, data=data, namespace=namespace, id=id).encode()
    assert encode_packet(Packet, packet_type, data, namespace, id) == expected


def test_a_payload_with_bytes_becomes_python_socketios_binary_packet():
    data = ["file", {"name": "a", "body": b"\x00\x01"}]
    encoded = encode_packet(Packet, packet.EVENT, data, "/", None)
    assert encoded == Packet(packet.EVENT, data=data, namespace="/").encode()
    assert encoded[0].startswith("51-") and encoded[1:] == [b"\x00\x01"]


def test_a_payload_json_cannot_encode_fails_as_python_socketio_fails():
    with pytest.raises(TypeError):
        encode_packet(Packet, packet.EVENT, ["x", {"at": datetime.datetime.now(datetime.UTC)}], "/", None)


async def test_the_ack_of_an_event_is_sent_once_encoded_and_none_without_an_id():
    sio = GatewayServer(
        event_limit=1000,
        connect_timeout=10,
        packet_rate=(1000, 1000),
        async_handlers=False,
        async_mode="asgi",
        json=safe_json,
        logger=False,
        engineio_logger=False,
    )
    sent: list = []

    async def send(eio_sid, data):
        sent.append(data)

    sio.eio.send = send

    async def any_event(event, sid, *args):
        return {"ok": True, "data": args[0]} if event == "one" else ("a", b"\x01")

    sio.on("connect", lambda sid, environ, auth=None: True)
    sio.on("*", any_event)
    await sio._handle_eio_connect("e1", {})
    await sio._handle_eio_message("e1", "0")
    sent.clear()
    await sio._handle_eio_message("e1", '25["one",{"n":"é"}]')
    await sio._handle_eio_message("e1", '2["one",{"n":1}]')  # no id: no ack
    await sio._handle_eio_message("e1", '26["two"]')  # a tuple with bytes: a binary ack
    assert sent == [
        '35[{"ok":true,"data":{"n":"\\u00e9"}}]',
        '61-6["a",{"_placeholder":true,"num":0}]',
        b"\x01",
    ]
