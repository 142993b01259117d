"""What the client raises."""

from __future__ import annotations

from typing import Any


class BayeuxError(Exception):
    """The server refused a message: `error` is the Bayeux error string ("403::Denied"),
    `reply` the whole reply (None when no reply came).

    Examples:
        >>> from bayeux.client import BayeuxError, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> with ServerThread() as running, SyncClient(running.url) as client:
        ...     try:
        ...         client.publish("/chat/*", "hello")  # a pattern: not a channel to publish to
        ...     except BayeuxError as error:
        ...         print(error.code, error.error, error.reply["successful"])
        405 405:/chat/*:Invalid channel False

    Added in version 0.3.0."""

    def __init__(self, error: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.reply = reply

    @property
    def code(self) -> int | None:
        """The error's numeric code (403 of "403::Denied"), None when it has none.

        Examples:
            >>> from bayeux.client import BayeuxError
            >>> BayeuxError("403::Denied").code
            403
            >>> print(BayeuxError("handshake refused").code)
            None
        """
        head = self.error.split(":", 1)[0]
        return int(head) if head.isdigit() else None


class ClientClosed(BayeuxError):
    """The client is disconnected (by `disconnect()`, or the server advised it not to come back)
    or was never opened: nothing more can be sent.

    Examples:
        >>> import asyncio
        >>> from bayeux.client import Client
        >>> from bayeux.testing import ServerThread
        >>> async def too_late(url):
        ...     async with Client(url) as client:
        ...         pass
        ...     await client.publish("/chat/room", "hello")
        >>> with ServerThread() as running:
        ...     asyncio.run(too_late(running.url))
        Traceback (most recent call last):
        ...
        bayeux.client.errors.ClientClosed: disconnected

    Added in version 0.3.0."""


class QueueFull(BayeuxError):
    """More messages wait to be sent than `max_pending` allows (the server is unreachable or
    slower than the application publishes).

    Examples:
        >>> import asyncio
        >>> from bayeux.client import Client
        >>> from bayeux.testing import ServerThread
        >>> async def burst(url):  # two messages in one turn of the loop, room for one
        ...     async with Client(url, max_pending=1) as client:
        ...         sent = [client.publish("/chat/room", n) for n in range(2)]
        ...         results = await asyncio.gather(*sent, return_exceptions=True)
        ...         return [type(result).__name__ for result in results]
        >>> with ServerThread() as running:
        ...     asyncio.run(burst(running.url))
        ['dict', 'QueueFull']

    Added in version 0.3.0."""


class TransportError(BayeuxError):
    """A request or a connection failed below Bayeux (HTTP status, socket, frame): what was
    sent may not have reached the server.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import free_port
        >>> SyncClient(f"http://127.0.0.1:{free_port()}/cometd").open()  # nothing listens there
        Traceback (most recent call last):
        ...
        bayeux.client.errors.TransportError: no transport reached the server: websocket: ...

    Added in version 0.3.0."""


class ProtocolError(TransportError):
    """The server answered something that is not a Bayeux reply: not JSON, not of a JSON
    content type, not an array of message objects, or a field missing or of the wrong type
    (the message names it). The exchange failed as if the connection had: what was sent may
    or may not have been handled.

    Examples:
        >>> import tornado.web
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Page(tornado.web.RequestHandler):
        ...     def post(self):
        ...         self.write("<html>not Bayeux</html>")
        >>> with ServerThread(extra_routes=[("/page", Page)]) as running:
        ...     SyncClient(running.origin + "/page", transports=["long-polling"]).open()
        Traceback (most recent call last):
        ...
        bayeux.client.errors.ProtocolError: no transport reached the server: long-polling: a reply
        of content type 'text/html', not JSON

    Added in version 0.3.0."""


class ReplyTooLarge(ProtocolError):
    """A reply over the client's bounds (`max_reply_size` bytes, `max_reply_messages`
    messages), refused before it was read whole.

    Examples:
        >>> from bayeux.client import ProtocolError, ReplyTooLarge, SyncClient
        >>> from bayeux.testing import ServerThread
        >>> issubclass(ReplyTooLarge, ProtocolError)
        True
        >>> with ServerThread() as running:  # a handshake reply is larger than 100 bytes
        ...     SyncClient(running.url, transports=["long-polling"], max_reply_size=100).open()
        Traceback (most recent call last):
        ...
        bayeux.client.errors.ProtocolError: no transport reached the server: long-polling: a reply
        declaring ... bytes, over max_reply_size 100

    Added in version 0.3.0."""


class NotSent(BayeuxError):
    """The message waited `hold_timeout` seconds for a session (the server was unreachable or
    kept refusing) and was dropped unsent: the server never saw it, sending it again is safe.

    Examples:
        >>> import asyncio
        >>> from bayeux.client import Client
        >>> async def unsent():
        ...     client = Client("http://127.0.0.1:9/cometd", hold_timeout=0.05)  # never opened
        ...     await client.publish("/chat/room", "hello")
        >>> asyncio.run(unsent())
        Traceback (most recent call last):
        ...
        bayeux.client.errors.NotSent: no session for 0.05 s (NEW)

    Added in version 0.3.0."""
