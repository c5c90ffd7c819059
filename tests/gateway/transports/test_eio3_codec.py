"""Engine.IO 3 payload framing and Socket.IO v4 packet codecs (pure functions)."""

import pytest

from gateway.transports.eio3 import codec
from gateway.transports.eio3.codec import PacketType, ProtocolError, SioPacket

EMOJI = "😀"  # U+1F600: one code point, two UTF-16 units, four UTF-8 bytes


def test_utf16_length_counts_astral_characters_twice():
    assert codec.utf16_length("abc") == 3
    assert codec.utf16_length(EMOJI) == 2
    assert codec.utf16_length("é漢") == 2  # BMP: one unit each whatever their UTF-8 size
    assert codec.utf16_length("👍🏽") == 4  # emoji + skin tone modifier: two astral code points


def test_payload_frames_each_packet_with_its_utf16_length():
    assert codec.encode_payload(["0{}", "40"]) == "3:0{}2:40"
    assert codec.encode_payload([f'42["{EMOJI}"]']) == f'8:42["{EMOJI}"]'


@pytest.mark.parametrize(
    "packets",
    [["2"], ["40", "2", '42["a",1]'], [f'42["{EMOJI}é漢👍🏽"]', "2"], ["4" + EMOJI * 100, "4:::"]],
)
def test_payload_round_trips(packets):
    assert codec.decode_payload(codec.encode_payload(packets), max_packet=10_000) == packets


def test_javascript_framed_payload_decodes():
    # What engine.io-parser 2.x writes for two messages, lengths from String.prototype.length.
    body = f'14:42["a","{EMOJI}{EMOJI}"]1:2'
    assert codec.decode_payload(body, max_packet=100) == [f'42["a","{EMOJI}{EMOJI}"]', "2"]


@pytest.mark.parametrize(
    "body",
    [
        "",  # empty
        "2",  # no length
        ":2",  # empty length
        "a:2",  # not a number
        "²:2",  # a digit to str.isdigit, not to JavaScript
        "3:42",  # shorter than declared
        "0:",  # empty packet
        "1:21:",  # second frame empty
        "99999999999:2",  # absurd length prefix
        "1:" + EMOJI,  # length splits a surrogate pair
        "2:2" + EMOJI,  # the frame ends inside the emoji
    ],
)
def test_malformed_payloads_are_refused(body):
    with pytest.raises(ProtocolError):
        codec.decode_payload(body, max_packet=100)


def test_frame_longer_than_max_packet_is_refused_before_reading():
    with pytest.raises(ProtocolError):
        codec.decode_payload("101:" + "4" + "x" * 100, max_packet=100)
    assert codec.decode_payload("100:" + "4" + "x" * 99, max_packet=100) == ["4" + "x" * 99]


def test_protocol_errors_do_not_quote_the_input():
    secret = "token=s3cret"
    for bad in (f"42[{secret}", f"9{secret}", f"2/nsp,{'9' * 20}{secret}"):
        with pytest.raises(ProtocolError) as info:
            codec.decode_packet(bad)
        assert "s3cret" not in str(info.value)


def test_encoders_write_what_socket_io_parser_3_writes():
    assert codec.encode_connect("/") == "40"
    assert codec.encode_connect("/customer") == "40/customer,"
    assert codec.encode_disconnect("/customer") == "41/customer,"
    assert codec.encode_error("/v1/conversations/events", "Authentication Error") == (
        '44/v1/conversations/events,"Authentication Error"'
    )
    assert codec.encode_event("/", "hi", [{"t": EMOJI}]) == f'42["hi",{{"t":"{EMOJI}"}}]'
    assert codec.encode_ack("/c", 7, ["a", 2]) == '43/c,7["a",2]'


@pytest.mark.parametrize(
    "text, packet",
    [
        ("0", SioPacket(PacketType.CONNECT)),
        ("0/customer,", SioPacket(PacketType.CONNECT, "/customer")),
        ("0/customer", SioPacket(PacketType.CONNECT, "/customer")),
        (
            "0/v1/conversations/events?token=a%20b&user_id=7,",
            SioPacket(PacketType.CONNECT, "/v1/conversations/events", "token=a%20b&user_id=7"),
        ),
        ("1/customer,", SioPacket(PacketType.DISCONNECT, "/customer")),
        ('2["hi"]', SioPacket(PacketType.EVENT, data=["hi"])),
        ('2/c,12["hi",1,{"a":null}]', SioPacket(PacketType.EVENT, "/c", id=12, data=["hi", 1, {"a": None}])),
        ('3/c,0["x"]', SioPacket(PacketType.ACK, "/c", id=0, data=["x"])),
        (
            '52-/c,9["up",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]',
            SioPacket(
                PacketType.BINARY_EVENT,
                "/c",
                id=9,
                data=["up", {"_placeholder": True, "num": 1}, {"_placeholder": True, "num": 0}],
                attachments=2,
            ),
        ),
        (
            '61-3[{"_placeholder":true,"num":0}]',
            SioPacket(PacketType.BINARY_ACK, id=3, data=[{"_placeholder": True, "num": 0}], attachments=1),
        ),
    ],
)
def test_packets_decode(text, packet):
    assert codec.decode_packet(text) == packet


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7",
        "x",
        '2["a"',  # truncated JSON
        '2{"a":1}',  # event data must be a list
        "2[]",  # without a name
        "2[1]",  # name must be a string
        "2[NaN]",  # not JSON (Python's json would accept it)
        '3/c,["x"]',  # ack without id
        "3/c,1{}",  # ack data must be a list
        '4"boom"',  # clients do not send ERROR
        "0/c,1",  # id on CONNECT
        "2" + "[" * 100_000,  # nesting deep enough to exhaust recursion
        '2/c,1234567890123456["x"]',  # id too long
        '5["x",{"_placeholder":true,"num":0}]',  # binary without an attachment count
        '50-["x"]',  # binary with no attachments
        '5x-["x"]',  # count not a number
        '512345678901-["x"]',  # count longer than socket.io-parser allows
        "51-[]",  # binary event without a name
        '61-["x"]',  # binary ack without id
        "6",
    ],
)
def test_malformed_packets_are_refused(text):
    with pytest.raises(ProtocolError):
        codec.decode_packet(text)


# --- binary ------------------------------------------------------------------------------------


def test_events_and_acks_with_bytes_become_binary_packets_with_attachments():
    placeholder = '{"_placeholder":true,"num":%d}'
    assert codec.encode_event("/c", "up", [{"a": b"\x00\xff", "b": [b"2"]}, EMOJI]) == (
        f'452-/c,["up",{{"a":{placeholder % 0},"b":[{placeholder % 1}]}},"{EMOJI}"]',
        b"\x00\xff",
        b"2",
    )
    assert codec.encode_ack("/", 4, [bytearray(b"x")]) == ('461-4[{"_placeholder":true,"num":0}]', b"x")
    assert codec.encode_event("/", "t", ["text"]) == '42["t","text"]'  # text stays one string
    with pytest.raises(TypeError):
        codec.encode_event("/", "t", [object()])


def test_binary_polling_payload_is_what_engine_io_parser_2_writes():
    # engine.io-parser 2.2.1 encodePayloadAsBinary([message '2["é😀"]', message <00 ff 01>, ping])
    # (checked against the npm package): kind byte, length digits as bytes, 255, packet.
    written = bytes.fromhex("000102ff34325b22c3a9f09f9880225d0104ff0400ff010001ff32")
    packets = ['42["é😀"]', b"\x00\xff\x01", "2"]
    assert codec.encode_binary_payload(packets) == written
    assert codec.decode_binary_payload(written, max_packet=100) == packets


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x02\x01\xff2",  # kind neither text nor binary
        b"\x00\xff2",  # no length
        b"\x00\x01",  # no 255
        b"\x00\x0a\xff2",  # a length digit over 9
        b"\x00\x02\xff2",  # shorter than declared
        b"\x00\x00\xff",  # empty packet
        b"\x00" + b"\x09" * 11 + b"\xff2",  # absurd length
        b"\x01\x02\xff\x02\x00",  # binary that is not a message
        b"\x00\x02\xff\xc3\x28",  # not UTF-8
        b"\x01\x09\x09\x09\xff\x04" + b"x" * 998,  # longer than max_packet
    ],
)
def test_malformed_binary_payloads_are_refused(body):
    with pytest.raises(ProtocolError):
        codec.decode_binary_payload(body, max_packet=100)


def test_base64_messages_round_trip_and_are_strict():
    assert codec.encode_base64_message(b"\x01\x02") == "b4AQI="  # what engine.io-parser 2.x writes
    assert codec.decode_base64_message("b4AQI=") == b"\x01\x02"
    for bad in ("b2AQI=", "b4AQ*I=", "b4AQI"):
        with pytest.raises(ProtocolError):
            codec.decode_base64_message(bad)
