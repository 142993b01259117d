"""What the client raises."""

from __future__ import annotations

from typing import Any


class BayeuxError(Exception):
    """The server refused a message: `error` is the Bayeux error string ("403::Denied"),
    `reply` the whole reply (None when no reply came).

    Added in version 0.3.0."""

    def __init__(self, error: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.reply = reply

    @property
    def code(self) -> int | None:
        """The error's numeric code (403 of "403::Denied"), None when it has none."""
        head = self.error.split(":", 1)[0]
        return int(head) if head.isdigit() else None


class ClientClosed(BayeuxError):
    """The client is disconnected (by `disconnect()`, or the server advised it not to come back)
    or was never opened: nothing more can be sent.

    Added in version 0.3.0."""


class QueueFull(BayeuxError):
    """More messages wait to be sent than `max_pending` allows (the server is unreachable or
    slower than the application publishes).

    Added in version 0.3.0."""


class TransportError(BayeuxError):
    """A request or a connection failed below Bayeux (HTTP status, socket, frame): what was
    sent may not have reached the server.

    Added in version 0.3.0."""


class ProtocolError(TransportError):
    """The server answered something that is not a Bayeux reply: not JSON, not of a JSON
    content type, not an array of message objects, or a field missing or of the wrong type
    (the message names it). The exchange failed as if the connection had: what was sent may
    or may not have been handled.

    Added in version 0.3.0."""


class ReplyTooLarge(ProtocolError):
    """A reply over the client's bounds (`max_reply_size` bytes, `max_reply_messages`
    messages), refused before it was read whole.

    Added in version 0.3.0."""


class NotSent(BayeuxError):
    """The message waited `hold_timeout` seconds for a session (the server was unreachable or
    kept refusing) and was dropped unsent: the server never saw it, sending it again is safe.

    Added in version 0.3.0."""
