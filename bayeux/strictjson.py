"""JSON given on a command line (`bayeux-client publish`, `bayeux publish`): strict JSON only
(no NaN, Infinity or other constants Python's json module accepts, which a server would
refuse or a subscriber read as null), nested at most MAX_DEPTH deep, at most a given number of
bytes; refused with a ValueError that says which, never a RecursionError."""

from __future__ import annotations

from typing import Any

import orjson

# Deep enough for any real message; far below what orjson encodes (254 levels) and parses
# (1024), so data accepted here is data every server and client can carry.
MAX_DEPTH = 64


def loads(text: str, *, max_depth: int = MAX_DEPTH, max_bytes: int | None = None) -> Any:
    """`text` decoded as strict JSON.

    Raises:
        ValueError: not JSON (NaN and Infinity included), over `max_bytes`, or nested
            deeper than `max_depth`.
    """
    data = text.encode("utf-8", "surrogatepass")
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"the data is {len(data)} bytes, over the bound of {max_bytes}")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):
            raise ValueError(f"the data is nested deeper than {max_depth} levels") from None
        raise ValueError(
            f"the data is not JSON (strict JSON: no NaN or Infinity): {error}"
        ) from None
    if depth(value) > max_depth:
        raise ValueError(f"the data is nested deeper than {max_depth} levels")
    return value


def depth(value: Any) -> int:
    """How deep arrays and objects nest in `value` (0 for a scalar); without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest
