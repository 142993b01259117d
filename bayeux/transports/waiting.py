"""Parking a held `/meta/connect` on the IOLoop until messages arrive, it times out, another
connection of the same session takes over, or the session ends."""

from __future__ import annotations

import asyncio
from enum import Enum

from ..core.message import Message
from ..core.server import BayeuxServer, ConnectHold


class Wakeup(Enum):
    MESSAGES = "messages"
    DISPLACED = "displaced"
    CLOSED = "closed"  # the session ended
    GONE = "gone"  # the client closed its connection
    TIMEOUT = "timeout"
    STREAMED = "streamed"  # an EventSource stream carries the session's messages


class FutureWaiter:
    """A `Waiter` (see core.session) that resolves an asyncio future on the first event."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[Wakeup] = asyncio.get_running_loop().create_future()

    def _resolve(self, why: Wakeup) -> None:
        if not self.future.done():
            self.future.set_result(why)

    def wake(self) -> None:
        self._resolve(Wakeup.MESSAGES)

    def displace(self) -> None:
        self._resolve(Wakeup.DISPLACED)

    def close(self) -> None:
        self._resolve(Wakeup.CLOSED)

    def gone(self) -> None:
        self._resolve(Wakeup.GONE)


async def wait_for_messages(
    server: BayeuxServer, hold: ConnectHold, waiter: FutureWaiter
) -> Wakeup:
    """Parks `hold` until something happens; costs no thread, only a future and a timer."""
    session = hold.session
    if session.ended is not None:
        return Wakeup.CLOSED
    if getattr(session.waiter, "is_stream", False):
        # An EventSource stream carries this session's deliveries; it is not a connect, so a
        # connect neither displaces it nor waits: it is answered at once.
        return Wakeup.STREAMED
    # Attaching first displaces any other connection's held connect, even when this one is
    # answered at once: one outstanding connect per session.
    session.attach(waiter)
    try:
        if hold.timeout <= 0 or session.queue or server.shutting_down:
            return Wakeup.MESSAGES
        return await asyncio.wait_for(asyncio.shield(waiter.future), hold.timeout)
    except TimeoutError:
        return Wakeup.TIMEOUT
    finally:
        session.detach(waiter)


def complete(server: BayeuxServer, hold: ConnectHold, why: Wakeup) -> tuple[list, Message]:
    """The queued deliveries to write before the connect reply, and that reply."""
    reply = server.finish_connect(hold, displaced=why is Wakeup.DISPLACED)
    session = hold.session
    if why in (Wakeup.DISPLACED, Wakeup.GONE, Wakeup.STREAMED) or session.ended is not None:
        # The connection that took over (or the next connect) gets the queue; nothing is lost.
        return [], reply
    return session.drain(), reply
