"""The JSON module the Socket.IO and Engine.IO packet encoders and decoders use (python-socketio's
`json` option): the standard library's, with two differences.

- A document nested past the parser's recursion limit is a ValueError like any other malformed
  JSON, which the decoders already handle, rather than a RecursionError that ends the Engine.IO
  session with a traceback.
- The compact form every packet is written in (`dumps(data, separators=(",", ":"))`, python-socketio's
  and python-engineio's call, and the gateway's own `encode_packet`) goes to one encoder made
  once: `json.dumps` makes a `JSONEncoder` for every call with arguments, which cost more than
  encoding a send's ack itself (issue 19: 13.9 against 6.1 µs per ack on the 2-core EPYC, and
  5.5 with the C encoder called directly, bench/README.md). The same encoder, the same text; any
  other arguments go to `json.dumps`.
"""

import json
from json.encoder import encode_basestring_ascii
from typing import Any

try:
    from _json import make_encoder as c_make_encoder
except ImportError:  # no C accelerator: the encoder's own (slower) path
    c_make_encoder = None

JSONDecodeError = json.JSONDecodeError
COMPACT = (",", ":")
_compact = json.JSONEncoder(separators=COMPACT)  # what json.dumps(o, separators=COMPACT) makes
_scan = json.JSONDecoder().scan_once  # what json.loads(s) scans with (its default decoder's)


def dumps(obj: Any, **kwargs: Any) -> str:
    if kwargs.get("separators") != COMPACT or len(kwargs) != 1:
        return json.dumps(obj, **kwargs)
    if c_make_encoder is None:
        return _compact.encode(obj)
    # What `_compact.encode(obj)` runs (JSONEncoder.iterencode, one-shot, CPython 3.11), without
    # its Python layers: the C encoder with the encoder's settings and a fresh dict of the
    # objects being encoded (the circular check; an error part way leaves entries in it).
    encode = c_make_encoder(
        {},
        _compact.default,
        encode_basestring_ascii,
        None,  # indent
        _compact.key_separator,
        _compact.item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    return "".join(encode(obj, 0))


def loads(text: str | bytes, **kwargs: Any) -> Any:
    try:
        return json.loads(text, **kwargs)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def loads_at(text: str, start: int) -> Any:
    """`loads(text[start:])` for a document that starts at `start` (not a space) and ends the
    text, without copying it: the same scanner `json.loads` runs; anything it does not take
    whole (an error, trailing spaces or data) is left to `loads` itself, which answers it."""
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError, RecursionError):
        return loads(text[start:])
    if end != len(text):
        return loads(text[start:])
    return value
