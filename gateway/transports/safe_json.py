"""The JSON module the Socket.IO and Engine.IO packet encoders and decoders use (python-socketio's
`json` option): the standard library's, with two differences.

- A document nested past the parser's recursion limit is a ValueError like any other malformed
  JSON, which the decoders already handle, rather than a RecursionError that ends the Engine.IO
  session with a traceback.
- The compact form every packet is written in (`dumps(data, separators=(",", ":"))`, python-socketio's
  and python-engineio's call, and the gateway's own `encode_packet`) goes to one encoder made
  once: `json.dumps` makes a `JSONEncoder` for every call with arguments, which cost more than
  encoding a send's ack itself (issue 19: 13.9 against 6.1 µs per ack on the 2-core EPYC,
  bench/README.md). The same encoder, the same text; any other arguments go to `json.dumps`.
"""

import json
from typing import Any

JSONDecodeError = json.JSONDecodeError
COMPACT = (",", ":")
_compact = json.JSONEncoder(separators=COMPACT)  # what json.dumps(o, separators=COMPACT) makes


def dumps(obj: Any, **kwargs: Any) -> str:
    if kwargs.get("separators") == COMPACT and len(kwargs) == 1:
        return _compact.encode(obj)
    return json.dumps(obj, **kwargs)


def loads(text: str | bytes, **kwargs: Any) -> Any:
    try:
        return json.loads(text, **kwargs)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
