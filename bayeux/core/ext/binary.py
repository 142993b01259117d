"""The binary extension, the server's side of CometD's `BinaryExtension`: binary data travels
in JSON as Z85 text (core/z85.py) in `data.data`, marked by `ext.binary`.

Coming in, a message with `ext.binary` has its `data.data` decoded to `bytes` before anything
else sees it (the policy, authorizers, message listeners, services), `data.last` and
`data.meta` kept as they came, and `ext.binary` taken away. Going out, a message whose
`data.data` is `bytes` (a server-side publish, a delivery, a service's reply, or a client's
binary message being broadcast) gets it as Z85 and `ext.binary: {}`: a broadcast is encoded
once, for every subscriber, as without the extension.
"""

from __future__ import annotations

import logging

from .. import channel as ch
from .. import z85
from ..extension import Extension
from ..message import Message
from ..session import ServerSession

log = logging.getLogger("bayeux.server")

BYTES_LIKE = (bytes, bytearray, memoryview)


class BinaryExtension(Extension):
    """Decodes the binary data clients send with CometD's `BinaryExtension` (`publishBinary`,
    `remoteCallBinary`), and encodes the `bytes` the server sends, as CometD's server
    `BinaryExtension` does. `--binary-extension` installs one; a message whose binary data is
    not Z85, or decodes to more than `max_bytes` bytes, is refused (the client's reply is
    `404:<channel>:Message deleted`).

    Examples:
        >>> binary = BinaryExtension()
        >>> message = {"channel": "/files", "data": {"data": "Hello", "last": True},
        ...            "ext": {"binary": {}}}
        >>> binary.incoming(None, message)
        True
        >>> message["data"]
        {'data': b'\\x86O\\xd2o', 'last': True}
        >>> binary.outgoing(None, message)
        True
        >>> message["data"], message["ext"]
        ({'data': 'Hello', 'last': True}, {'binary': {}})

    Added in version 0.3.0."""

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        self.max_bytes = max_bytes

    def incoming(self, session: ServerSession | None, message: Message) -> bool:
        """Decodes `data.data` from Z85 when the message has `ext.binary`; False (refused)
        when it cannot.

        Examples:
            >>> binary = BinaryExtension()
            >>> binary.incoming(None, {"channel": "/files", "data": {"data": "~~~~~"},
            ...                        "ext": {"binary": {}}})
            False
        """
        ext = message.get("ext")
        if not isinstance(ext, dict) or "binary" not in ext or ch.is_meta(message["channel"]):
            return True
        data = message.get("data")
        if not isinstance(data, dict):
            return self._refused(session, message, "no data object")
        text = data.get("data")
        if not isinstance(text, str):
            return self._refused(session, message, "no Z85 text in data.data")
        if len(text) // 5 * 4 > self.max_bytes:
            return self._refused(session, message, f"over {self.max_bytes} bytes")
        try:
            decoded = z85.decode(text)
        except z85.Z85Error as exc:
            return self._refused(session, message, str(exc))
        if len(decoded) > self.max_bytes:
            return self._refused(session, message, f"over {self.max_bytes} bytes")
        # A new object: whoever holds the one that came (nobody yet) keeps its text.
        message["data"] = {**data, "data": decoded}
        rest = {k: v for k, v in ext.items() if k != "binary"}
        if rest:
            message["ext"] = rest
        else:
            del message["ext"]
        return True

    def outgoing(self, session: ServerSession | None, message: Message) -> bool:
        """Encodes `data.data` as Z85, with `ext.binary`, when it is `bytes` (or a bytearray
        or memoryview); the data and ext objects are replaced, never changed, since others
        may hold them.

        Examples:
            >>> message = {"channel": "/files", "data": {"data": b"\\x86O\\xd2o"}}
            >>> BinaryExtension().outgoing(None, message)
            True
            >>> message
            {'channel': '/files', 'data': {'data': 'Hello'}, 'ext': {'binary': {}}}
        """
        data = message.get("data")
        if not isinstance(data, dict):
            return True
        binary = data.get("data")
        if not isinstance(binary, BYTES_LIKE):
            return True
        message["data"] = {**data, "data": z85.encode(binary)}
        ext = message.get("ext")
        message["ext"] = {**ext, "binary": {}} if isinstance(ext, dict) else {"binary": {}}
        return True

    def _refused(self, session: ServerSession | None, message: Message, why: str) -> bool:
        # Bad input from a client: worth a debug line, not an error in the server's log.
        log.debug(
            "binary data refused on %s: %s",
            message["channel"][:64],
            why,
            extra={"event": "binary-refused", "session": session.tag if session else None},
        )
        return False
