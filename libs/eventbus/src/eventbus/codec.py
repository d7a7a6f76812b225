"""JSON of event data and attributes: orjson, with the standard library where orjson would not be exact."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# orjson reads integers beyond 64 bits as floats; any run of 19 digits or more goes to the standard library.
_LONG_NUMBER = re.compile(rb"\d{19}")


def to_json(value: Any) -> bytes:
    """Compact UTF-8 JSON; integers beyond 64 bits (which orjson refuses) go through the standard library."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def from_json(text: bytes | str) -> Any:
    """Parse JSON, keeping integers of any size exact."""
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_NUMBER.search(raw):
        return json.loads(raw)
    return orjson.loads(raw)
