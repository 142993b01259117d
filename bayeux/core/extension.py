"""Extensions: code that sees (and may change or drop) every message coming in and going out,
for the whole server or for one session, as CometD's and Faye's extensions do.

Outgoing hooks of server extensions see a broadcast message once, before it is encoded for all its
subscribers (`session` is None then); session extensions see their own session's copy, which costs
that session a private encoding.
"""

from __future__ import annotations

from .message import Message
from .session import ServerSession
from .tasks import Decision


class Extension:
    """Override `incoming` and/or `outgoing`: each may change the message in place, and returns
    True to keep it or False to drop it. Either may be a coroutine (`async def`): the message
    waits for it, and messages to one session keep their order. A plain method costs no task or
    await.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> class Stamp(Extension):
        ...     def outgoing(self, session, message):
        ...         if message.get("channel") == "/chat/room" and "data" in message:
        ...             message["data"] = {"text": message["data"], "by": "server"}
        ...         return True
        >>> server.add_extension(Stamp())
        >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
        ...     with SyncClient(running.url) as client:
        ...         room = client.messages("/chat/room", timeout=5)
        ...         reply = client.publish("/chat/room", "hello")
        ...         next(room)["data"]
        {'text': 'hello', 'by': 'server'}

    Added in version 0.1.0."""

    def incoming(self, session: ServerSession | None, message: Message) -> Decision:
        """Sees each message a client sends before the server handles it, and may change it in
        place: returns True to keep it, False to drop it (the client's reply is then
        `404:<channel>:Message deleted`), or an awaitable of either.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> class NoEmptyMessages(Extension):
            ...     def incoming(self, session, message):
            ...         return message.get("data") != ""
            >>> server.add_extension(NoEmptyMessages())
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         client.publish("/chat/room", "")
            Traceback (most recent call last):
            ...
            bayeux.client.errors.BayeuxError: 404:/chat/room:Message deleted
        """
        return True

    def outgoing(self, session: ServerSession | None, message: Message) -> Decision:
        """Sees each message before it goes to `session` (replies and deliveries; a broadcast
        once for all its subscribers, with `session` None), and may change it in place: returns
        True to keep it, False to drop it, or an awaitable of either.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> class Welcome(Extension):
            ...     def outgoing(self, session, message):
            ...         if message.get("channel") == "/meta/handshake":
            ...             message.setdefault("ext", {})["motd"] = "welcome"
            ...         return True
            >>> server.add_extension(Welcome())
            >>> with ServerThread(endpoint=Endpoint(server=server)) as running:
            ...     with SyncClient(running.url) as client:
            ...         print(client.state)
            connected
        """
        return True
