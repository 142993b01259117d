"""What the client accepts from a server, checked before anything acts on it: a body within
`max_reply_size` bytes, decoded to a batch of at most `max_reply_messages` message objects,
each of whose fields has the type Bayeux gives it. Anything else raises `ProtocolError` (or
`ReplyTooLarge`) naming what was wrong, so that a hostile or broken server makes an exchange
fail, never the client raise KeyError or TypeError or grow without bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core import codec
from .errors import ProtocolError, ReplyTooLarge

Message = dict[str, Any]

# The largest reply read, in bytes: the server's own WebSocket bound (and aiohttp's).
MAX_REPLY_SIZE = 4 * 1024 * 1024
# The most messages taken from one reply: ten times the most a server takes in one request
# (its --max-batch-messages), since a connect reply drains a whole queue.
MAX_REPLY_MESSAGES = 10_000

RECONNECT = ("retry", "handshake", "none")
_ADVICE_NUMBERS = ("interval", "timeout", "maxInterval")


@dataclass(frozen=True)
class Bounds:
    """The bounds of one reply: bytes read, messages decoded."""

    max_size: int = MAX_REPLY_SIZE
    max_messages: int = MAX_REPLY_MESSAGES


DEFAULT_BOUNDS = Bounds()


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def from_json(body: bytes | str, bounds: Bounds) -> list[Message]:
    """The messages of a JSON reply (an array of objects, or one object)."""
    if len(body) > bounds.max_size:
        raise ReplyTooLarge(f"a reply of {len(body)} bytes, over max_reply_size {bounds.max_size}")
    try:
        value = codec.loads(body)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"a reply that is not JSON: {error}") from None
    return batch(value, bounds)


def from_msgpack(body: bytes, bounds: Bounds) -> list[Message]:
    """The messages of a msgpack reply. An array's length comes first in msgpack, so a reply
    of too many messages is refused before any of them is decoded."""
    if len(body) > bounds.max_size:
        raise ReplyTooLarge(f"a reply of {len(body)} bytes, over max_reply_size {bounds.max_size}")
    declared = _msgpack_array_length(body)
    if declared is not None and declared > bounds.max_messages:
        raise ReplyTooLarge(
            f"a reply of {declared} messages, over max_reply_messages {bounds.max_messages}"
        )
    try:
        value = codec.msgpack_loads(body)
    except (ValueError, TypeError) as error:
        raise ProtocolError(f"a reply that is not msgpack: {error}") from None
    return batch(value, bounds)


def _msgpack_array_length(body: bytes) -> int | None:
    """The length a msgpack array declares in its header, None when `body` is no array."""
    if not body:
        return None
    first = body[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(body) >= 3:
        return int.from_bytes(body[1:3], "big")
    if first == 0xDD and len(body) >= 5:
        return int.from_bytes(body[1:5], "big")
    return None


def batch(value: object, bounds: Bounds) -> list[Message]:
    """`value` as a list of checked messages; ProtocolError for anything else."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ProtocolError(f"a reply that is a {_kind(value)}, not an array of messages")
    if len(value) > bounds.max_messages:
        raise ReplyTooLarge(
            f"a reply of {len(value)} messages, over max_reply_messages {bounds.max_messages}"
        )
    for index, message in enumerate(value):
        check_message(message, index)
    return value


def _field(message: Message, name: str, types: tuple[type, ...], what: str, index: int) -> None:
    if name not in message:
        return
    value = message[name]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        raise ProtocolError(f"message {index}: `{name}` is a {_kind(value)}, not {what}")


def check_message(message: object, index: int = 0) -> None:
    """Raises ProtocolError unless `message` is an object with the fields Bayeux gives a
    message, of their types (a meta reply also has `successful`)."""
    if not isinstance(message, dict):
        raise ProtocolError(f"message {index} is a {_kind(message)}, not an object")
    channel = message.get("channel")
    if "channel" not in message:
        raise ProtocolError(f"message {index}: `channel` is missing")
    if not isinstance(channel, str):
        raise ProtocolError(f"message {index}: `channel` is a {_kind(channel)}, not a string")
    if channel.startswith("/meta/") and "successful" not in message:
        raise ProtocolError(f"message {index} ({channel}): `successful` is missing")
    _field(message, "successful", (bool,), "a boolean", index)
    _field(message, "error", (str,), "a string", index)
    _field(message, "clientId", (str,), "a string", index)
    _field(message, "id", (str, int), "a string", index)
    _field(message, "ext", (dict,), "an object", index)
    _field(message, "advice", (dict,), "an object", index)
    _field(message, "supportedConnectionTypes", (list,), "an array", index)
    types = message.get("supportedConnectionTypes")
    if isinstance(types, list) and not all(isinstance(t, str) for t in types):
        raise ProtocolError(f"message {index}: `supportedConnectionTypes` holds a non-string")
    advice = message.get("advice")
    if isinstance(advice, dict):
        reconnect = advice.get("reconnect")
        if "reconnect" in advice and reconnect not in RECONNECT:
            raise ProtocolError(
                f"message {index}: `advice.reconnect` is {reconnect!r}, not one of {RECONNECT}"
            )
        for name in _ADVICE_NUMBERS:
            number = advice.get(name)
            if name in advice and not _is_number(number):
                raise ProtocolError(f"message {index}: `advice.{name}` is not a number")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def handshake_session(reply: Message) -> tuple[str, list[str]]:
    """The `clientId` and `supportedConnectionTypes` of a successful handshake reply."""
    client_id = reply.get("clientId")
    if not isinstance(client_id, str) or not client_id:
        raise ProtocolError(f"the handshake reply's `clientId` is {_kind(client_id)}, not a string")
    offered = reply.get("supportedConnectionTypes")
    if not isinstance(offered, list):
        raise ProtocolError(
            f"the handshake reply's `supportedConnectionTypes` is {_kind(offered)}, not an array"
        )
    return client_id, [t for t in offered if isinstance(t, str)]
