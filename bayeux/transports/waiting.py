"""Parking a held `/meta/connect` on the IOLoop until messages arrive, it times out, another
connection of the same session takes over, or the session ends."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque

from ..core.server import BayeuxServer, ConnectHold
from ..core.session import Wakeup

# Held connects a loop turn wakes at most. Each woken one answers its request in the next turn
# (the reply, the queue drained and encoded, a write), and asyncio runs every callback that is
# ready when a turn starts before it looks at timers and sockets again: a broadcast to tens of
# thousands of parked long-polls woken at once stalled the process for the time of all their
# answers (benchmarks/scale.py --transport long-polling).
WAKE_SHARE = 256


class _Waker:
    """Wakes the held connects of one loop WAKE_SHARE a turn, in the order they were woken."""

    __slots__ = ("loop", "waiting", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: deque[FutureWaiter] = deque()
        self.scheduled = False

    def add(self, waiter: FutureWaiter) -> None:
        self.waiting.append(waiter)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.run)

    def run(self) -> None:
        waiting = self.waiting
        for _ in range(min(WAKE_SHARE, len(waiting))):
            waiting.popleft().woken()
        if waiting:
            self.loop.call_soon(self.run)  # behind the answers just made ready
        else:
            self.scheduled = False


_WAKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()


def _waker(loop: asyncio.AbstractEventLoop) -> _Waker:
    waker = _WAKERS.get(loop)
    if waker is None:
        waker = _WAKERS[loop] = _Waker(loop)
    return waker


class FutureWaiter:
    """A `Waiter` (see core.session) that resolves an asyncio future on the first event.
    Messages wake it through its loop's `_Waker` (a turn or more later); the other events
    resolve it at once."""

    __slots__ = ("future", "_timer", "_deadline", "_woken")

    is_stream = False

    def __init__(self) -> None:
        self.future: asyncio.Future[Wakeup] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._woken = False

    def _resolve(self, why: Wakeup) -> None:
        if not self.future.done():
            self.future.set_result(why)

    def wake(self) -> None:
        if not self._woken and not self.future.done():
            self._woken = True
            _waker(self.future.get_loop()).add(self)

    def woken(self) -> None:
        """Its turn to be woken came (`_Waker`)."""
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

    def park(self, hold: ConnectHold) -> asyncio.Future[Wakeup]:
        """Parks `hold`, which `answered_at_once` did not answer: attached to its session
        (displacing any other connection's held connect), its timeout armed. Returns the
        future of the first event, TIMEOUT after the hold's timeout; call `unpark` once it is
        done. The caller awaits the future itself: a coroutine here would stay in memory for
        as long as the connect is held (benchmarks/memory.py), and one timer handle does what
        asyncio's wait_for and shield would do with a task and two futures."""
        hold.session.attach(self)
        self._deadline = asyncio.get_running_loop().call_later(hold.timeout, self._time_out)
        return self.future

    def unpark(self, hold: ConnectHold) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._timer is not None:
            self._timer.cancel()
        hold.session.detach(self)


def answered_at_once(server: BayeuxServer, hold: ConnectHold) -> Wakeup | None:
    """Why `hold` is answered without waiting, or None when it waits (`FutureWaiter.park`).
    A connect answered at once still displaces any other connection's held connect: one
    outstanding connect per session. Needs no waiter: most connects of a busy client find
    messages queued (benchmarks/exchange.py)."""
    session = hold.session
    if session.ended is not None:
        return Wakeup.CLOSED
    previous = session.waiter
    if previous is not None and previous.is_stream:
        # An EventSource stream carries this session's deliveries; it is not a connect, so a
        # connect neither displaces it nor waits: it is answered at once.
        return Wakeup.STREAMED
    if hold.timeout <= 0 or session.queue or server.shutting_down:
        if previous is not None:
            session.waiter = None
            previous.displace()
        return Wakeup.MESSAGES
    return None
