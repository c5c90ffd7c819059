"""Pure codecs for Engine.IO protocol 3 and Socket.IO protocol 4.

Engine.IO packet: one type digit then data (`4` message, `2` ping, `3` pong, `1` close, `5` upgrade,
`6` noop, `0` open). A polling payload frames each packet as `<length>:<packet>`, the length counted
in UTF-16 code units as JavaScript counts `String.length` (an emoji outside the BMP counts 2).

Socket.IO packet (inside an Engine.IO message): `<type>[<attachments>-][<nsp>,][<ack id>][<json>]`.
The encoder writes `<nsp>,` for every namespace other than `/`, as socket.io-parser 3.x does.

Binary (engine.io-parser 2.x): an Engine.IO message whose data is bytes travels as a websocket
binary frame `\x04<bytes>`, as `b4<base64>` in text (websocket or polling, for clients that asked
for `b64=1`), or inside a binary polling payload (`encode_binary_payload`). Socket.IO binary
packets are a header with placeholders followed by one such message per attachment.

Every decoder raises `ProtocolError` on anything malformed; the message names the fault, never the
data, so it can be logged.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from enum import IntEnum

# Engine.IO packet types (protocol 3).
OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0", "1", "2", "3", "4", "5", "6"
ENGINE_TYPES = frozenset((OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP))

DIGITS = frozenset("0123456789")
MAX_LENGTH_DIGITS = 10  # a frame length prefix longer than this is garbage, not a big packet
MAX_ACK_ID_DIGITS = 15  # socket.io clients count acks from 0; stays an exact JavaScript number
MAX_ATTACHMENT_DIGITS = 10  # socket.io-parser's own bound on the attachment count field


class ProtocolError(ValueError):
    """Malformed input from a client. The message is safe to log (no payload data)."""


class PacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


@dataclass(frozen=True)
class SioPacket:
    type: PacketType
    nsp: str = "/"
    query: str = ""  # CONNECT only: the raw query after `?` in the namespace field
    id: int | None = None
    data: object = None
    attachments: int = 0  # BINARY_EVENT / BINARY_ACK: how many binary messages follow


# --- Engine.IO polling payloads ---------------------------------------------------------------


def utf16_length(text: str) -> int:
    """Length as JavaScript counts it: code points above U+FFFF take two UTF-16 units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def encode_payload(packets: list[str]) -> str:
    """Frame Engine.IO packets (already encoded strings) for a polling response."""
    return "".join(f"{utf16_length(p)}:{p}" for p in packets)


def decode_payload(body: str, *, max_packet: int) -> list[str]:
    """Split a polling request body into Engine.IO packet strings.

    `max_packet` bounds each packet in UTF-16 units (a frame claiming more is refused before it is
    read). Base64 binary frames (`b4...`) are returned as they are; the caller refuses binary.
    """
    if not body:
        raise ProtocolError("empty payload")
    if body.isascii():
        return _decode_units(body, body, max_packet, ascii_only=True)
    units = body.encode("utf-16-le", "surrogatepass")
    return _decode_units(body, units, max_packet, ascii_only=False)


def _decode_units(body: str, units, max_packet: int, *, ascii_only: bool) -> list[str]:
    # For ASCII bodies one character is one unit, so the string is sliced directly. Otherwise
    # `units` is the UTF-16-LE encoding and offsets are in bytes (two per unit).
    width = 1 if ascii_only else 2
    total = len(units) // width
    packets: list[str] = []
    pos = 0
    while pos < total:
        start = pos
        while pos < total and _unit_at(units, pos, width) != ":":
            if _unit_at(units, pos, width) not in DIGITS or pos - start >= MAX_LENGTH_DIGITS:
                raise ProtocolError("bad frame length")
            pos += 1
        if pos == start or pos >= total:
            raise ProtocolError("bad frame length")
        length = int(body[start:pos] if ascii_only else units[start * 2 : pos * 2].decode("utf-16-le"))
        pos += 1  # the colon
        if length == 0 or length > max_packet:
            raise ProtocolError("frame length out of range")
        if pos + length > total:
            raise ProtocolError("frame longer than payload")
        if ascii_only:
            packet = body[pos : pos + length]
        else:
            try:
                packet = units[pos * 2 : (pos + length) * 2].decode("utf-16-le")
            except UnicodeDecodeError:
                raise ProtocolError("frame splits a character") from None
        packets.append(packet)
        pos += length
    return packets


def _unit_at(units, pos: int, width: int) -> str:
    if width == 1:
        return units[pos]
    # Digits and the colon are ASCII: low byte is the character, high byte is zero.
    low, high = units[pos * 2], units[pos * 2 + 1]
    return chr(low) if high == 0 else "\uffff"


def encode_base64_message(data: bytes) -> str:
    """A binary Engine.IO message as text (`b4<base64>`), for clients that asked for `b64=1`."""
    return "b" + MESSAGE + base64.b64encode(data).decode("ascii")


def decode_base64_message(packet: str) -> bytes:
    """The bytes of a `b4<base64>` packet. Only messages carry binary."""
    if packet[1:2] != MESSAGE:
        raise ProtocolError("binary packet that is not a message")
    try:
        return base64.b64decode(packet[2:], validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad base64") from None


def encode_binary_payload(packets: list[str | bytes]) -> bytes:
    """Frame Engine.IO packets for a polling response to a client that takes binary
    (engine.io-parser 2.x `encodePayloadAsBinary`): per packet a kind byte (0 text, 1 binary),
    the length's decimal digits as bytes 0-9, 255, then the packet: text as UTF-8 (its length in
    bytes), binary as the message type byte 4 and the data (its length counts the type byte)."""
    out = bytearray()
    for packet in packets:
        if isinstance(packet, str):
            body = packet.encode("utf-8", "surrogatepass")
            out.append(0)
        else:
            body = b"\x04" + packet
            out.append(1)
        out += bytes(int(digit) for digit in str(len(body)))
        out.append(255)
        out += body
    return bytes(out)


def decode_binary_payload(body: bytes, *, max_packet: int) -> list[str | bytes]:
    """Split a binary polling request body (`application/octet-stream`) into Engine.IO packets:
    text packets as strings, binary messages as their bytes (the message type byte removed)."""
    if not body:
        raise ProtocolError("empty payload")
    packets: list[str | bytes] = []
    pos, total = 0, len(body)
    while pos < total:
        kind = body[pos]
        if kind not in (0, 1):
            raise ProtocolError("bad binary frame kind")
        pos += 1
        start = pos
        while pos < total and body[pos] != 255:
            if body[pos] > 9 or pos - start >= MAX_LENGTH_DIGITS:
                raise ProtocolError("bad frame length")
            pos += 1
        if pos == start or pos >= total:
            raise ProtocolError("bad frame length")
        length = int("".join(str(digit) for digit in body[start:pos]))
        pos += 1  # the 255
        if length == 0 or length > max_packet + kind:
            raise ProtocolError("frame length out of range")
        if pos + length > total:
            raise ProtocolError("frame longer than payload")
        chunk = body[pos : pos + length]
        pos += length
        if kind == 0:
            try:
                packets.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                raise ProtocolError("frame is not UTF-8") from None
        elif chunk[0] != 4:
            raise ProtocolError("binary packet that is not a message")
        else:
            packets.append(bytes(chunk[1:]))
    return packets


# --- Socket.IO packets ------------------------------------------------------------------------


def _dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _nsp_prefix(nsp: str) -> str:
    return "" if nsp == "/" else nsp + ","


def encode_connect(nsp: str) -> str:
    """Engine.IO message carrying Socket.IO CONNECT (`40`, `40/nsp,`)."""
    return f"{MESSAGE}0{_nsp_prefix(nsp)}"


def encode_disconnect(nsp: str) -> str:
    return f"{MESSAGE}1{_nsp_prefix(nsp)}"


def encode_error(nsp: str, error: object) -> str:
    """Socket.IO v4 ERROR: `44/nsp,"Authentication Error"` (the 2.x client emits `error`)."""
    return f"{MESSAGE}4{_nsp_prefix(nsp)}{_dumps(error)}"


# An encoded outbound packet: one Engine.IO text packet, or a binary Socket.IO packet's header
# followed by its attachments (bytes: one binary Engine.IO message each).
Outbound = str | tuple[str | bytes, ...]


def _dumps_binary(data: object) -> tuple[str, list[bytes]]:
    """JSON with every bytes value replaced by a placeholder, and the bytes in order."""
    attachments: list[bytes] = []

    def placeholder(value: object) -> object:
        if isinstance(value, (bytes, bytearray, memoryview)):
            attachments.append(bytes(value))
            return {"_placeholder": True, "num": len(attachments) - 1}
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=placeholder)
    return text, attachments


def _encode_binary(kind: PacketType, nsp: str, ack_id: str, data: list) -> Outbound:
    text, attachments = _dumps_binary(data)
    if not attachments:  # another type json cannot write: a bug in the caller
        raise TypeError("payload is not JSON serializable")
    return (f"{MESSAGE}{kind.value}{len(attachments)}-{_nsp_prefix(nsp)}{ack_id}{text}", *attachments)


def encode_event(nsp: str, name: str, args: list) -> Outbound:
    """`42/nsp,[name, ...args]`; with bytes in the arguments, a BINARY_EVENT and its attachments.
    JSON is tried first: text, the common case, pays nothing for binary support."""
    data = [name, *args]
    try:
        return f"{MESSAGE}2{_nsp_prefix(nsp)}{_dumps(data)}"
    except TypeError:
        return _encode_binary(PacketType.BINARY_EVENT, nsp, "", data)


def encode_ack(nsp: str, ack_id: int, args: list) -> Outbound:
    """`43/nsp,<id>[...args]`; with bytes in the arguments, a BINARY_ACK and its attachments."""
    data = list(args)
    try:
        return f"{MESSAGE}3{_nsp_prefix(nsp)}{ack_id}{_dumps(data)}"
    except TypeError:
        return _encode_binary(PacketType.BINARY_ACK, nsp, str(ack_id), data)


def _reject_constant(name: str) -> object:
    raise ProtocolError("non-JSON number")


def decode_packet(text: str) -> SioPacket:
    """Decode the Socket.IO packet inside an Engine.IO message (without the leading `4`).

    Binary packets (`5`, `6`) are returned with their attachment count and their data as sent
    (placeholders in place); the caller waits for the attachments.
    """
    if not text or text[0] not in "0123456":
        raise ProtocolError("unknown packet type")
    kind = PacketType(int(text[0]))
    i = 1
    attachments = 0
    if kind in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        while i < len(text) and text[i] in DIGITS:
            i += 1
        if i == 1 or i - 1 > MAX_ATTACHMENT_DIGITS or text[i : i + 1] != "-":
            raise ProtocolError("bad attachment count")
        attachments = int(text[1:i])
        if attachments == 0:
            raise ProtocolError("binary packet without attachments")
        i += 1
    nsp, query = "/", ""
    if i < len(text) and text[i] == "/":
        end = text.find(",", i)
        end = len(text) if end == -1 else end
        nsp = text[i:end]
        i = end + 1
        if "?" in nsp:
            nsp, query = nsp.split("?", 1)
        if not nsp or len(nsp) > 200:
            raise ProtocolError("bad namespace")
    ack_id = None
    start = i
    while i < len(text) and text[i] in DIGITS:
        i += 1
    if i > start:
        if i - start > MAX_ACK_ID_DIGITS:
            raise ProtocolError("bad ack id")
        ack_id = int(text[start:i])
    data = None
    if i < len(text):
        try:
            data = json.loads(text[i:], parse_constant=_reject_constant)
        except ProtocolError:
            raise
        except (ValueError, RecursionError):
            raise ProtocolError("bad json") from None
    return _checked(SioPacket(kind, nsp, query, ack_id, data, attachments))


def _checked(packet: SioPacket) -> SioPacket:
    kind, data = packet.type, packet.data
    if kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ProtocolError("bad event")
    elif kind in (PacketType.ACK, PacketType.BINARY_ACK):
        if packet.id is None or not isinstance(data, list):
            raise ProtocolError("bad ack")
    elif kind == PacketType.ERROR:
        raise ProtocolError("error packet from client")
    elif packet.id is not None:
        raise ProtocolError("ack id on a control packet")
    return packet
