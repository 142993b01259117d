"""Bayeux message helpers: error strings, replies, and deliveries encoded once."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

from . import codec

Message = dict[str, Any]


class ProtocolError(ValueError):
    """Input that is not Bayeux at all (not an object or an array of objects with a `channel`).

    Transports answer it with HTTP 400 or a WebSocket close; a message that is Bayeux but wrong
    gets an error reply instead.
    """


class TooManyMessages(ProtocolError):
    """A batch of more messages than the server takes at once (Settings.max_batch_messages).

    Transports answer it as they answer a body that is too large: HTTP 413, WebSocket close
    1009."""


# Each error argument comes from the wire: at most this many characters of it are echoed.
MAX_ERROR_ARG = 64
MAX_ERROR_ARGS = 8
# Ids are echoed in replies: strings up to this length, integers that JavaScript holds exactly.
MAX_ID_LENGTH = 256
MAX_SAFE_INTEGER = 2**53 - 1
# Characters escaped in error arguments: the separators of `code:args:text`, and what could
# forge a log line or confuse a terminal.
_ESCAPED = {c: f"%{c:02X}" for c in [*range(0x20), 0x7F, ord("%"), ord(":"), ord(",")]}


def _error_arg(arg: str) -> str:
    if len(arg) > MAX_ERROR_ARG:
        arg = arg[:MAX_ERROR_ARG] + "..."
    return arg.translate(_ESCAPED)


def error(code: int, args: str | list[str], text: str) -> str:
    """An error string `code:args:text`, as Bayeux 1.0 section 3.x and CometD format them.

    Arguments are percent-escaped where they hold `:`, `,`, `%` or control characters, so the
    string always splits into its three fields, and cut short so a huge input is not echoed."""
    given = args if isinstance(args, list) else [args] if args else []
    joined = ",".join(_error_arg(a) for a in given[:MAX_ERROR_ARGS])
    if len(given) > MAX_ERROR_ARGS:
        joined += ",..."
    return f"{code}:{joined}:{text}"


def valid_id(value: object) -> bool:
    """Whether a message `id` may be echoed: a short string or a safe integer."""
    if isinstance(value, str):
        return len(value) <= MAX_ID_LENGTH
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    )


def number_in(value: object, low: float, high: float) -> bool:
    """Whether `value` is a finite JSON number (not a boolean) within [low, high]."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and low <= value <= high  # NaN compares false, inf is out of any finite range
    )


def integer_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def non_json_value(value: object) -> bool:
    """Whether `value` holds anything a JSON client could not receive: what msgpack can carry
    and JSON cannot (bytes, extension types, non-finite floats, integers past 64 bits)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return True
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -(2**63) <= item < 2**63:
                return True
        elif not (item is None or isinstance(item, (str, bool))):
            return True
    return False


def ext_of(message: Message) -> dict[str, Any]:
    """The message's `ext` object; empty when it has none (or not an object)."""
    ext = message.get("ext")
    return ext if isinstance(ext, dict) else {}


def reply_to(message: Message, channel: str | None = None) -> Message:
    """The skeleton of a reply: the request's channel, and its `id` when it has a valid one."""
    reply: Message = {"channel": channel if channel is not None else message["channel"]}
    message_id = message.get("id")
    # Only a valid id is echoed: an invalid one is what the error reply is about.
    if message_id is not None and valid_id(message_id):
        reply["id"] = message_id
    return reply


def batch_from(value: Any, max_messages: int) -> list[Message]:
    """The messages of a decoded request body: one object or an array of objects, each with a
    string `channel`. Raises ProtocolError for anything else, TooManyMessages for more than
    `max_messages`."""
    if isinstance(value, dict):
        value = [value]
    elif not isinstance(value, list):
        raise ProtocolError("expected a JSON object or an array of objects")
    if len(value) > max_messages:
        raise TooManyMessages(f"more than {max_messages} messages in one batch")
    for item in value:
        if not isinstance(item, dict):
            raise ProtocolError("every element of the array must be a JSON object")
        if not isinstance(item.get("channel"), str):
            raise ProtocolError("every message needs a string 'channel'")
    messages: list[Message] = value
    return messages


# What the objects a JSON batch decodes into cost beyond its bytes, by the byte that begins
# each: a dict (`{`: an empty one is 64 bytes, a small one 184-360), a list (`[`), a value in a
# container (`,`: an int or float object and its slot), a string's header (`"`, two per
# string), a dict entry (`:`). Counted with bytes.count, at memchr's speed: an upper bound on
# what orjson makes, within 1.0-2.1x for the usual shapes and up to 11x for hostile ones (many
# empty strings or booleans, which decode into shared objects); tests/system/test_hook_backlog.py
# holds it to tracemalloc's figures.
_DECODED_COST = ((b"{", 96), (b"[", 64), (b",", 40), (b'"', 24), (b":", 32))
# A JSON byte decodes into at most this much: `{}` into a 64-byte dict and its slot, an escaped
# character into a 4-byte one.
_MOST_PER_BYTE = 40
# Batches up to this size are charged that bound rather than scanned.
SMALL_BATCH = 4096
# msgpack's one-byte containers and scalars decode into objects of up to 72 bytes with their
# slot: the bound when a decoded frame cannot be measured again as JSON.
_MSGPACK_WORST = 72


def decoded_cost(encoded: bytes | str, value: Any = None) -> int:
    """What a batch holds in memory once decoded, in bytes: from its JSON text (`encoded`),
    or, for a binary format, from its decoded `value` measured as JSON (msgpack carries the
    same values in fewer bytes). Charged to the client's address while the batch waits on
    asynchronous hooks (`BayeuxServer.handle`)."""
    if value is not None:
        if len(encoded) <= SMALL_BATCH:
            return len(encoded) * _MSGPACK_WORST
        try:
            encoded = codec.dumps(value)
        except (TypeError, ValueError, OverflowError):
            # Values JSON cannot carry: such messages are refused before any hook runs
            # (replies.non_json_problem), so the batch waits no longer than its checks.
            return len(encoded) * _MSGPACK_WORST // 8
    # A string holding one character beyond the BMP takes 4 bytes for every character (it may
    # come escaped, as \uD83D\uDE00, in ASCII).
    if len(encoded) <= SMALL_BATCH:
        # No byte decodes into more than this: a bound that costs no scan, for the small
        # batches that are nearly all of them (benchmarks/exchange.py).
        return len(encoded) * _MOST_PER_BYTE
    if isinstance(encoded, str):
        wide = not encoded.isascii() or "\\u" in encoded
    else:
        wide = not encoded.isascii() or b"\\u" in encoded
    cost = 4 * len(encoded) if wide else len(encoded)
    if isinstance(encoded, str):  # a text frame: counted as it is, not copied to bytes
        for byte, size in _DECODED_COST:
            cost += encoded.count(byte.decode()) * size
        return cost
    for byte, size in _DECODED_COST:
        cost += encoded.count(byte) * size
    return cost


# What a queued delivery costs beyond its JSON bytes: the Delivery object, its bytes object's
# header, the timestamp and the queue's slot (tests/system/test_memory_bounds.py measures it with
# tracemalloc). Queues are bounded by this plus the JSON, so that their bound is their memory.
DELIVERY_OVERHEAD = 192
# What one more queue holding a delivery costs (its slot in the queue's list, rounded up).
QUEUE_SLOT = 16


class Delivery:
    """A message on its way to subscribers, encoded at most once whatever their number.

    The JSON bytes are made when the delivery is created: every delivery is encoded anyway (to
    refuse what cannot be), and they are all a delivery keeps. The decoded message is not kept:
    a message of many small values costs several times its JSON in Python objects, and queues
    would then hold far more memory than the bytes they count. `message` decodes it again for
    the rare paths that need it (in-process sessions, the engine's replay, session listeners).

    Session listeners (`ServerSession.on_queued`, ...) see deliveries: read `channel`, `size`
    and `message`; never change one, it is shared by every session it was queued for.

    Examples:
        >>> delivery = Delivery({"channel": "/news", "data": "hi"})
        >>> delivery.channel, delivery.json, delivery.message["data"]
        ('/news', b'{"channel":"/news","data":"hi"}', 'hi')

    Added in version 0.3.0."""

    __slots__ = (
        "json",
        "channel",
        "size",
        "share",
        "born",
        "position",
        "lazy",
        "key",
        "_msgpack",
    )

    def __init__(self, message: Message, encoded: bytes | None = None) -> None:
        # When it was published (monotonic seconds), for the publish-to-write latency.
        self.born = time.monotonic()
        # Raises TypeError (orjson) for values JSON cannot hold: the caller refuses the message.
        # `encoded` is given when the bytes come from elsewhere (the engine's log).
        self.json: bytes = codec.dumps(message) if encoded is None else encoded
        # The channel (the message's own string): what the paths that route or filter
        # deliveries read without decoding them.
        self.channel: str = message["channel"]
        # Its place in the engine's log (core/engine.py); 0 for what never went through it.
        self.position = 0
        # What the message costs a queue that holds it, in bytes of memory: what a session's
        # own bound counts.
        self.size = len(self.json) + DELIVERY_OVERHEAD
        # Its part of that for each of the queues it was handed to at once (`shared_by`): what
        # an address's budget counts, so that a broadcast held by many sessions of one address
        # is counted about once there, as it is in memory.
        self.share = self.size
        # Published lazily (`publish(..., lazy=True)`): it may wait like a lazy channel's.
        self.lazy = False
        # Its conflation key on a conflated channel (ServerChannel.conflate), else None.
        self.key: Hashable | None = None
        self._msgpack: bytes | None = None

    def shared_by(self, queues: int) -> None:
        """The delivery is about to be queued for `queues` sessions at once (a fan-out). Its
        share is set once, before it is first queued: the sessions holding it give back what
        they were charged.

        Examples:
            >>> delivery = Delivery({"channel": "/news", "data": "x" * 1000})
            >>> delivery.shared_by(10)  # about to be queued for ten sessions
            >>> delivery.share < delivery.size // 5
            True
        """
        if queues > 1 and self.share == self.size:
            self.share = self.size // queues + QUEUE_SLOT

    @property
    def message(self) -> Message:
        """The message, decoded again from its JSON (a new dict at each call).

        Examples:
            >>> delivery = Delivery({"channel": "/news", "data": {"text": "hi"}})
            >>> delivery.message
            {'channel': '/news', 'data': {'text': 'hi'}}
            >>> delivery.message is delivery.message
            False
        """
        decoded: Message = codec.loads(self.json)
        return decoded

    @property
    def msgpack(self) -> bytes:
        """The message encoded as msgpack (for the msgpack WebSocket format), made once.

        Examples:
            >>> import msgpack
            >>> delivery = Delivery({"channel": "/news", "data": 1})
            >>> msgpack.unpackb(delivery.msgpack), delivery.msgpack is delivery.msgpack
            ({'channel': '/news', 'data': 1}, True)
        """
        if self._msgpack is None:
            self._msgpack = codec.msgpack_dumps(self.message)
        return self._msgpack

    def pack_msgpack(self, message: Message) -> None:
        """Encodes `message` (the one this delivery was made from) as msgpack now, so that a
        value msgpack cannot carry is found before the delivery is queued.

        Examples:
            >>> message = {"channel": "/news", "data": [1, 2]}
            >>> delivery = Delivery(message)
            >>> delivery.pack_msgpack(message)  # raises for what msgpack cannot carry
            >>> delivery.msgpack == Delivery(message).msgpack
            True
        """
        self._msgpack = codec.msgpack_dumps(message)

    def __repr__(self) -> str:
        return f"Delivery({self.json[:200]!r})"
