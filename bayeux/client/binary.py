"""The binary extension on the client's side, CometD's JavaScript `BinaryExtension` in Python:
bytes travel as Z85 text in `data.data`, marked by `ext.binary`."""

from __future__ import annotations

import logging
from typing import Any

from ..core import z85
from ..core.channel import is_meta
from .extensions import ClientExtension

Message = dict[str, Any]
log = logging.getLogger("bayeux.client")

_BYTES_LIKE = (bytes, bytearray, memoryview)


class BinaryExtension(ClientExtension):
    """Sends binary data and receives it, as CometD's `BinaryExtension` does: publish an
    object whose `data` is `bytes` (with `last` and `meta` if you like, as CometD's
    `publishBinary` sends them) and it goes out as Z85 text with `ext.binary`; a message
    that comes with `ext.binary` reaches its subscriber with `data["data"]` as `bytes`. A
    server with `--binary-extension` decodes it on its side too. A message whose binary data
    does not decode is dropped (and logged).

    Examples:
        >>> from bayeux.client import BinaryExtension, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> with ServerThread(Settings(binary_extension=True)) as running:
        ...     with SyncClient(running.url, extensions=[BinaryExtension()]) as client:
        ...         files = client.messages("/files", timeout=5)
        ...         _ = client.publish("/files", {"data": b"\\x00\\xffbinary", "last": True})
        ...         next(files)["data"]
        {'data': b'\\x00\\xffbinary', 'last': True}

    Added in version 0.3.0."""

    def outgoing(self, message: Message) -> Message | None:
        """Encodes `data.data` when it is bytes (or a bytearray or memoryview) and marks the
        message with `ext.binary`; the application's data object is not changed.

        Examples:
            >>> from bayeux.client import BinaryExtension
            >>> binary = BinaryExtension()
            >>> binary.outgoing({"channel": "/files", "data": {"data": b"\\x86O\\xd2o"}})
            {'channel': '/files', 'data': {'data': 'Hello'}, 'ext': {'binary': {}}}
        """
        if is_meta(message.get("channel", "")):
            return message
        data = message.get("data")
        if isinstance(data, dict) and isinstance(data.get("data"), _BYTES_LIKE):
            message["data"] = {**data, "data": z85.encode(data["data"])}
            ext = message.get("ext")
            message["ext"] = {**ext, "binary": {}} if isinstance(ext, dict) else {"binary": {}}
        return message

    def incoming(self, message: Message) -> Message | None:
        """Decodes `data.data` into bytes when the message has `ext.binary`.

        Examples:
            >>> from bayeux.client import BinaryExtension
            >>> BinaryExtension().incoming(
            ...     {"channel": "/files", "data": {"data": "Hello"}, "ext": {"binary": {}}})
            {'channel': '/files', 'data': {'data': b'\\x86O\\xd2o'}, 'ext': {'binary': {}}}
        """
        channel = message.get("channel")
        ext = message.get("ext")
        if not isinstance(ext, dict) or "binary" not in ext:
            return message
        if not isinstance(channel, str) or is_meta(channel):
            return message
        data = message.get("data")
        try:
            if not isinstance(data, dict):
                raise z85.Z85Error("no data object")
            message["data"] = {**data, "data": z85.decode(data.get("data"))}  # type: ignore[arg-type]
        except z85.Z85Error as exc:
            log.warning("binary message on %s dropped: %s", channel[:64], exc)
            return None
        return message
