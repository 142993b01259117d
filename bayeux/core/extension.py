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
    """Override `incoming` and/or `outgoing`; return False to drop the message. Either may be a
    coroutine (`async def`): the message waits for it, and messages to one session keep their
    order. A plain method costs no task or await.

    Added in version 0.1.0."""

    def incoming(self, session: ServerSession | None, message: Message) -> Decision:
        """Sees each message a client sends before the server handles it: returns it (changed or
        not), None to drop it (the client is told the message was refused), or an awaitable of
        either."""
        return True

    def outgoing(self, session: ServerSession | None, message: Message) -> Decision:
        """Sees each message before it goes to `session` (replies and deliveries): returns it
        (changed or not), None to drop it, or an awaitable of either."""
        return True
