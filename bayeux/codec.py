"""JSON encoding and decoding of Bayeux messages.

orjson encodes a small Bayeux message about ten times faster than the standard library (see
benchmarks/codec.py); it is used when installed and the standard library otherwise, with the same
results on the wire.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    orjson = None  # type: ignore[assignment]


class DecodeError(ValueError):
    """The bytes are not a JSON document."""


if orjson is not None:

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

    def loads(data: bytes | str) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(str(exc)) from None

else:  # pragma: no cover

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(data: bytes | str) -> Any:
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(str(exc)) from None


def join_array(items: list[bytes]) -> bytes:
    """A JSON array from already encoded elements, so that shared message bytes are reused."""
    return b"[" + b",".join(items) + b"]"
