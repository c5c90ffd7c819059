"""The JSON module the Socket.IO and Engine.IO packet decoders use (python-socketio's `json`
option): the standard library's, except that a document nested past the parser's recursion
limit is a ValueError like any other malformed JSON, which the decoders already handle, rather
than a RecursionError that ends the Engine.IO session with a traceback."""

import json
from typing import Any

dumps = json.dumps
JSONDecodeError = json.JSONDecodeError


def loads(text: str | bytes, **kwargs: Any) -> Any:
    try:
        return json.loads(text, **kwargs)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
