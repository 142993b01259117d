"""The one place where a call from another thread crosses into the server's event loop.

The server's state (sessions, queues, the subscription tree, the hooks) belongs to the loop that
serves it: only code on that loop's thread may touch it. Applications call the public API from
anywhere, though: a FastAPI or Starlette `def` route runs in a thread pool, Django's sync views
and Celery tasks in threads of their own. A call made there used to run half-way and fail at the
first `asyncio.get_running_loop()`, leaving a WebSocket session flagged as flushing with no flush
ever scheduled (issue 32).

So every public method an application calls is marked here with `on_loop` (or
`on_loop_async` for coroutines). Called on the loop's thread, it runs as it is: one
`threading.get_ident()` and a comparison. Called from another thread, the whole call is handed
to the loop (`call_soon_threadsafe`) and the caller waits for its result or its exception: it
runs at once, between two of the loop's steps, so it is never half-applied. A coroutine method
awaited on another thread's loop runs on the server's loop (`run_coroutine_threadsafe`) and the
caller's loop awaits it.

The loop is learnt, not configured: a `LoopOwner` binds to the loop that first serves the server
(`BayeuxServer.handle`, `Endpoint.start`); it moves to a new loop once its old one has closed (a
test's `asyncio.run`, a restarted application). While no running loop serves it (before it
starts, at import time; after it stopped), a call runs where it is made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

__all__ = ["LoopOwner", "NotOnLoop", "LoopBound", "on_loop", "on_loop_async"]

log = logging.getLogger("bayeux.threads")

P = ParamSpec("P")
R = TypeVar("R")


class NotOnLoop(RuntimeError):
    """A call from another thread that could not run on the server's loop: the loop closed
    or stopped before it ran.

    Examples:
        >>> from bayeux.publisher import SyncPublisher
        >>> publisher = SyncPublisher("redis://127.0.0.1:6379/0")  # connects when it publishes
        >>> publisher.close()  # its loop is gone
        >>> publisher.publish("/news", "too late")
        Traceback (most recent call last):
        ...
        bayeux.core.threads.NotOnLoop: this SyncPublisher is closed: make a new one

    Added in version 0.3.0."""


class LoopOwner:
    """The event loop a server belongs to, and the thread that runs it.

    Added in version 0.3.0."""

    __slots__ = ("loop", "thread", "warned")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int | None = None
        self.warned = False

    def bind_running(self) -> None:
        """Binds to the loop running in the calling thread, unless it is the owner already:
        called by what serves the server (every batch the transports hand to it,
        `Endpoint.start`), never by an application's call, so that an application's own loop
        awaiting a coroutine method from another thread never takes the server over."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        current = self.loop
        if loop is current:
            return
        if current is not None and current is not loop and _alive(current):
            # Another loop still serves the server. Two loops serving one server race on
            # its state (each call from the second crosses into the first, and pays for it):
            # said once, loudly.
            if not self.warned:
                self.warned = True
                log.warning(
                    "the bayeux server is served from two running event loops (%r and %r):"
                    " serve it from one; calls from the second run on the first",
                    current,
                    loop,
                )
            return
        # The first loop, or a new one after the old one closed (a second asyncio.run on
        # the same thread: a test's, an application restarted in its process).
        self.loop, self.thread = loop, threading.get_ident()

    def elsewhere(self) -> asyncio.AbstractEventLoop | None:
        """The owner's loop when the calling thread is not its thread and the call must
        cross into it; None when the call may run where it is: on the owner's thread, or
        while no running loop serves the server (before it starts, after it stopped: then
        nothing else touches the server)."""
        if threading.get_ident() == self.thread:
            return None
        loop = self.loop
        if loop is None or not _alive(loop):
            return None
        return loop

    def call(self, loop: asyncio.AbstractEventLoop, work: Callable[[], R]) -> R:
        """Runs `work` on `loop` between two of its steps; waits for its result (or raises
        what it raised) on the calling thread."""
        done: concurrent.futures.Future[R] = concurrent.futures.Future()

        def run() -> None:
            if not done.set_running_or_notify_cancel():
                return
            try:
                done.set_result(work())
            except BaseException as exc:  # handed to the caller's thread, raised there
                done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError as exc:
            raise NotOnLoop(_refusal(loop)) from exc
        while True:
            try:
                return done.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if not _alive(loop) and done.cancel():
                    raise NotOnLoop(_refusal(loop)) from None

    async def run(self, make: Callable[[], Coroutine[Any, Any, R]]) -> R:
        """Awaits the coroutine `make()` returns: here, on the owner's thread; else on the
        owner's loop, the caller's loop awaiting its result."""
        loop = self.elsewhere()
        if loop is None:
            return await make()
        work = make()
        try:
            running = asyncio.run_coroutine_threadsafe(work, loop)
        except RuntimeError as exc:
            work.close()
            raise NotOnLoop(_refusal(loop)) from exc
        return await asyncio.wrap_future(running)


def _alive(loop: asyncio.AbstractEventLoop) -> bool:
    return not loop.is_closed() and loop.is_running()


def _refusal(loop: asyncio.AbstractEventLoop) -> str:
    return (
        f"the server's event loop {loop!r} stopped before the call could run on it: call the"
        " bayeux API while the server runs (from any thread: calls are run on its loop)"
    )


class LoopBound(Protocol):
    """An object whose methods belong to a server's loop."""

    @property
    def loop_owner(self) -> LoopOwner: ...


S = TypeVar("S", bound=LoopBound)


def on_loop(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Marks a method applications may call from any thread: from another thread than the
    loop's, the whole call runs on the loop and the caller waits for its result."""

    @functools.wraps(method)
    def crossing(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        owner = self.loop_owner
        loop = owner.elsewhere()
        if loop is None:
            return method(self, *args, **kwargs)
        return owner.call(loop, lambda: method(self, *args, **kwargs))

    crossing.__bayeux_thread_safe__ = True  # type: ignore[attr-defined]
    return crossing


def on_loop_async(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Marks a coroutine method applications may await on any thread's loop (or run with
    `asyncio.run` in a thread): from another thread, it runs on the server's loop and the
    caller's loop awaits its result."""

    @functools.wraps(method)
    async def crossing(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.loop_owner.run(lambda: method(self, *args, **kwargs))

    crossing.__bayeux_thread_safe__ = True  # type: ignore[attr-defined]
    return crossing


def thread_safe(function: object) -> bool:
    """Whether `function` (a method, or a property's getter/setter) was marked by `on_loop`
    or `on_loop_async`."""
    return bool(getattr(function, "__bayeux_thread_safe__", False))
