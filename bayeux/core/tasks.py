"""Work that runs on its own (a service call, an async listener, a connection, an engine's
background step): held until done, since asyncio keeps only weak references to tasks, and its
failure logged rather than lost as "exception was never retrieved"."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class TaskSet:
    """The tasks of one owner. A task's failure goes to its `done` callback when it has one,
    else to the log (at `level`), unless it is one of the `expected` exception types."""

    def __init__(
        self,
        what: str,
        log: logging.Logger,
        *,
        expected: tuple[type[BaseException], ...] = (),
        level: int = logging.ERROR,
    ) -> None:
        self.what = what
        self._log = log
        self._expected = expected
        self._level = level
        self._tasks: set[asyncio.Future[Any]] = set()
        # Made once: a bound method made at each spawn stays with its task, a connection's
        # for as long as it is open (benchmarks/memory.py).
        self._finished_callback = self._finished

    def spawn(
        self, work: Awaitable[T], done: Callable[[asyncio.Future[T]], None] | None = None
    ) -> asyncio.Future[T]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished_callback if done is None else self._then(done))
        return task

    def _then(
        self, done: Callable[[asyncio.Future[T]], None]
    ) -> Callable[[asyncio.Future[T]], None]:
        def finished(task: asyncio.Future[T]) -> None:
            self._tasks.discard(task)
            done(task)

        return finished

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, self._expected):
            self._log.log(self._level, "%s failed", self.what, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    def failed(self) -> None:
        """Logs the exception being handled as a failure of this owner's work."""
        self._log.log(self._level, "%s failed", self.what, exc_info=True)

    async def cancel(self, timeout: float = 1.0) -> None:
        """Cancels every task and waits (at most `timeout` seconds) for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


# What a hook that may wait decided: keep (True), drop (False), or an awaitable of either.
Decision = bool | Awaitable[bool]


class InOrder:
    """Steps that each decide (keep or drop) and then act, acting in the order they were run
    even when a decision has to be awaited: a step behind one that waits waits too. Used for
    messages passing asynchronous outgoing extensions, which must keep their order.

    Idle, a step whose decision is a plain bool acts at once, with no task."""

    __slots__ = ("_steps", "_tasks", "limit", "_draining")

    def __init__(self, tasks: TaskSet, limit: int) -> None:
        self._steps: deque[tuple[Callable[[], Decision], Callable[[], None]]] = deque()
        self._tasks = tasks
        self.limit = limit
        self._draining = False

    def __len__(self) -> int:
        return len(self._steps)

    def run(self, decide: Callable[[], Decision], act: Callable[[], None]) -> bool:
        """Runs `act` once `decide` keeps it, after every earlier step; False when `limit`
        steps already wait (the step is dropped)."""
        if not self._steps:
            decision = decide()
            if decision is True:
                act()
                return True
            if decision is False:
                return True
            return self.wait(decision, act)
        if len(self._steps) >= self.limit:
            return False
        self._steps.append((decide, act))
        return True

    def wait(self, decision: Awaitable[bool], act: Callable[[], None]) -> bool:
        """Like `run` with a decision already awaiting."""
        if len(self._steps) >= self.limit:
            _discard(decision)
            return False

        def decided() -> Decision:
            return decision

        self._steps.append((decided, act))
        if not self._draining:
            self._draining = True
            self._tasks.spawn(self._drain())
        return True

    async def _drain(self) -> None:
        steps = self._steps
        try:
            while steps:
                decide, act = steps[0]
                try:
                    decision = decide()
                    if not isinstance(decision, bool):
                        decision = await decision
                    if decision:
                        act()
                except Exception:
                    # One step's failure costs that step, never the ones behind it.
                    self._tasks.failed()
                finally:
                    steps.popleft()
        finally:
            self._draining = False
            steps.clear()  # cancelled (shut down): what waits is dropped


def _discard(decision: Decision) -> None:
    if asyncio.iscoroutine(decision):
        decision.close()
