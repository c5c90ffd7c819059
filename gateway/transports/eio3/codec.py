"""Pure codecs for Engine.IO protocol 3 and Socket.IO protocol 4 (text only).

Engine.IO packet: one type digit then data (`4` message, `2` ping, `3` pong, `1` close, `5` upgrade,
`6` noop, `0` open). A polling payload frames each packet as `<length>:<packet>`, the length counted
in UTF-16 code units as JavaScript counts `String.length` (an emoji outside the BMP counts 2).

Socket.IO packet (inside an Engine.IO message): `<type>[<attachments>-][<nsp>,][<ack id>][<json>]`.
The encoder writes `<nsp>,` for every namespace other than `/`, as socket.io-parser 3.x does.

Every decoder raises `ProtocolError` on anything malformed; the message names the fault, never the
data, so it can be logged.
"""

import json
from dataclasses import dataclass
from enum import IntEnum

# Engine.IO packet types (protocol 3).
OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0", "1", "2", "3", "4", "5", "6"
ENGINE_TYPES = frozenset((OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP))

DIGITS = frozenset("0123456789")
MAX_LENGTH_DIGITS = 10  # a frame length prefix longer than this is garbage, not a big packet
MAX_ACK_ID_DIGITS = 15  # socket.io clients count acks from 0; stays an exact JavaScript number


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


def encode_event(nsp: str, name: str, args: list) -> str:
    return f"{MESSAGE}2{_nsp_prefix(nsp)}{_dumps([name, *args])}"


def encode_ack(nsp: str, ack_id: int, args: list) -> str:
    return f"{MESSAGE}3{_nsp_prefix(nsp)}{ack_id}{_dumps(list(args))}"


def _reject_constant(name: str) -> object:
    raise ProtocolError("non-JSON number")


def decode_packet(text: str) -> SioPacket:
    """Decode the Socket.IO packet inside an Engine.IO message (without the leading `4`).

    Binary packets (`5`, `6`) are returned with their type only: attachments are never parsed or
    waited for, the caller refuses them.
    """
    if not text or text[0] not in "0123456":
        raise ProtocolError("unknown packet type")
    kind = PacketType(int(text[0]))
    if kind in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        return SioPacket(kind)
    i = 1
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
    return _checked(SioPacket(kind, nsp, query, ack_id, data))


def _checked(packet: SioPacket) -> SioPacket:
    kind, data = packet.type, packet.data
    if kind == PacketType.EVENT:
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ProtocolError("bad event")
    elif kind == PacketType.ACK:
        if packet.id is None or not isinstance(data, list):
            raise ProtocolError("bad ack")
    elif kind == PacketType.ERROR:
        raise ProtocolError("error packet from client")
    elif packet.id is not None:
        raise ProtocolError("ack id on a control packet")
    return packet
