"""JSON encoding and decoding of Bayeux messages.

orjson encodes a Bayeux delivery many times faster than the standard library
(benchmarks/codec.py; figures in docs/design-figures.md), so it is a dependency.
"""

from __future__ import annotations

from typing import Any

import msgpack
import orjson


class DecodeError(ValueError):
    """The bytes are not a JSON document."""


def dumps(value: Any) -> bytes:
    """`value` as JSON bytes.

    Copied into a bytes object of their own length: orjson returns its output in the buffer it
    wrote into, whatever the output's length, and a queue of small deliveries held far more
    memory than the bytes it counted (tests/system/test_memory_bounds.py measures it; the copy
    costs a memcpy)."""
    return memoryview(orjson.dumps(value)).tobytes()


# `value` as JSON bytes that are let go at once (a reply joined into the response that carries
# it): orjson's buffer goes with them, so the copy `dumps` makes for what is kept would be wasted.
dumps_transient = orjson.dumps


# orjson's own decoder and its error (a ValueError), for the transports' batches: one call
# fewer for every request than `loads` (benchmarks/exchange.py).
loads_batch = orjson.loads
BatchDecodeError = orjson.JSONDecodeError


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(str(exc)) from None


def join_array(items: list[bytes]) -> bytes:
    """A JSON array from already encoded elements, so that shared message bytes are reused."""
    return b"[" + b",".join(items) + b"]"


def msgpack_dumps(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def msgpack_loads(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise DecodeError(str(exc)) from None


def join_msgpack_array(items: list[bytes]) -> bytes:
    """A msgpack array from already packed elements (the msgpack twin of `join_array`)."""
    n = len(items)
    if n < 16:
        header = bytes((0x90 | n,))
    elif n < 1 << 16:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return header + b"".join(items)
