"""Work that runs on its own (a service call, an async listener, a connection, an engine's
background step): held until done, since asyncio keeps only weak references to tasks, and its
failure logged rather than lost as "exception was never retrieved"."""

from __future__ import annotations

import asyncio
import logging
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

    def spawn(
        self, work: Awaitable[T], done: Callable[[asyncio.Future[T]], None] | None = None
    ) -> asyncio.Future[T]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished if done is None else self._then(done))
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

    async def cancel(self, timeout: float = 1.0) -> None:
        """Cancels every task and waits (at most `timeout` seconds) for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
