"""Parking a held `/meta/connect` on the IOLoop until messages arrive, it times out, another
connection of the same session takes over, or the session ends."""

from __future__ import annotations

import asyncio

from ..core.server import BayeuxServer, ConnectHold
from ..core.session import Wakeup


class FutureWaiter:
    """A `Waiter` (see core.session) that resolves an asyncio future on the first event."""

    __slots__ = ("future", "_timer", "_deadline")

    is_stream = False

    def __init__(self) -> None:
        self.future: asyncio.Future[Wakeup] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def _resolve(self, why: Wakeup) -> None:
        if not self.future.done():
            self.future.set_result(why)

    def wake(self) -> None:
        self._resolve(Wakeup.MESSAGES)

    def wake_after(self, seconds: float) -> None:
        if self._timer is None and not self.future.done():
            self._timer = asyncio.get_running_loop().call_later(seconds, self.wake)

    def displace(self) -> None:
        self._resolve(Wakeup.DISPLACED)

    def close(self) -> None:
        self._resolve(Wakeup.CLOSED)

    def gone(self) -> None:
        self._resolve(Wakeup.GONE)

    def _time_out(self) -> None:
        self._resolve(Wakeup.TIMEOUT)

    async def wait(self, timeout: float) -> Wakeup:
        """The first event, or TIMEOUT after `timeout` seconds. One timer handle: asyncio's
        wait_for and shield would add a task and two futures to every held connect."""
        self._deadline = asyncio.get_running_loop().call_later(timeout, self._time_out)
        try:
            return await self.future
        finally:
            self._deadline.cancel()
            if self._timer is not None:
                self._timer.cancel()


async def wait_for_messages(
    server: BayeuxServer, hold: ConnectHold, waiter: FutureWaiter
) -> Wakeup:
    """Parks `hold` until something happens; costs no thread, only a future and a timer."""
    session = hold.session
    if session.ended is not None:
        return Wakeup.CLOSED
    if session.waiter is not None and session.waiter.is_stream:
        # An EventSource stream carries this session's deliveries; it is not a connect, so a
        # connect neither displaces it nor waits: it is answered at once.
        return Wakeup.STREAMED
    # Attaching first displaces any other connection's held connect, even when this one is
    # answered at once: one outstanding connect per session.
    session.attach(waiter)
    try:
        if hold.timeout <= 0 or session.queue or server.shutting_down:
            return Wakeup.MESSAGES
        return await waiter.wait(hold.timeout)
    finally:
        session.detach(waiter)
