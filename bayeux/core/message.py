"""Bayeux message helpers: error strings, replies, and deliveries encoded once."""

from __future__ import annotations

from typing import Any

from .. import codec

Message = dict[str, Any]


class ProtocolError(ValueError):
    """Input that is not Bayeux at all (not an object or an array of objects with a `channel`).

    Transports answer it with HTTP 400 or a WebSocket close; a message that is Bayeux but wrong
    gets an error reply instead.
    """


def error(code: int, args: str | list[str], text: str) -> str:
    """An error string `code:args:text`, as Bayeux 1.0 section 3.x and CometD format them."""
    joined = ",".join(args) if isinstance(args, list) else args
    return f"{code}:{joined}:{text}"


def reply_to(message: Message, channel: str | None = None) -> Message:
    """The skeleton of a reply: the request's channel, and its `id` when it has a valid one."""
    reply: Message = {"channel": channel if channel is not None else message["channel"]}
    message_id = message.get("id")
    # Only a valid id is echoed: an invalid one is what the error reply is about.
    if isinstance(message_id, (str, int)) and not isinstance(message_id, bool):
        reply["id"] = message_id
    return reply


def batch_from(value: Any) -> list[Message]:
    """The messages of a decoded request body: one object or an array of objects, each with a
    string `channel`. Raises ProtocolError for anything else."""
    if isinstance(value, dict):
        value = [value]
    elif not isinstance(value, list):
        raise ProtocolError("expected a JSON object or an array of objects")
    for item in value:
        if not isinstance(item, dict):
            raise ProtocolError("every element of the array must be a JSON object")
        if not isinstance(item.get("channel"), str):
            raise ProtocolError("every message needs a string 'channel'")
    return value


class Delivery:
    """A message on its way to subscribers, encoded at most once whatever their number."""

    __slots__ = ("message", "_json", "_msgpack")

    def __init__(self, message: Message) -> None:
        self.message = message
        self._json: bytes | None = None
        self._msgpack: bytes | None = None

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = codec.dumps(self.message)
        return self._json

    @property
    def msgpack(self) -> bytes:
        if self._msgpack is None:
            self._msgpack = codec.msgpack_dumps(self.message)
        return self._msgpack

    def __repr__(self) -> str:
        return f"Delivery({self.message!r})"
