"""Running a coroutine to its first suspension at once, so that what does not wait costs no
task.

- WebSocket frames through a host's asynchronous send: a host's send (uvicorn's, hypercorn's,
  aiohttp's send_str) writes to its transport at once unless the transport is paused. A flush
  that nothing holds up costs no task; what suspends goes on in one task, whose future tells
  the transport to wait (benchmarks/fanout.py: bayeux-asgi, bayeux-aiohttp).
- A long-polling exchange: most (publishes, a connect answered at once) finish without
  waiting; only a held connect needs a task and a watch on the client's disconnect
  (benchmarks/requests.py: bayeux-asgi, bayeux-aiohttp).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Generic, TypeVar

T = TypeVar("T")

SendOne = Callable[[bytes, bool], Awaitable[None]]


def send_eagerly(
    send_one: SendOne, payloads: list[bytes], binary: bool
) -> asyncio.Future[None] | None:
    """`send_one(payload, binary)` for each payload in order (a FrameSink's send_frames): None
    when every send finished at once; else a future resolved once the rest are sent, or failed
    with the host's error."""
    for index, payload in enumerate(payloads):
        try:
            waiting = _first_step(send_one(payload, binary))
        except Exception as error:  # the host's send failed: the connection is gone
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(error)
            return failed
        if waiting is not None:
            rest = payloads[index + 1 :]
            return asyncio.ensure_future(_send_rest(waiting, send_one, rest, binary))
    return None


async def _send_rest(
    waiting: _Waiting[None], send_one: SendOne, rest: list[bytes], binary: bool
) -> None:
    await waiting.finish()
    for payload in rest:
        await send_one(payload, binary)


class _Waiting(Generic[T]):
    """A coroutine suspended at its first step on `future` (None: it yielded to the loop)."""

    __slots__ = ("coroutine", "future")

    def __init__(self, coroutine: Coroutine[Any, Any, T], future: object) -> None:
        self.coroutine = coroutine
        self.future = future

    async def finish(self) -> T:
        """Runs the coroutine to its end as a task would: resumed once what it waits on is
        done (it reads that outcome itself); closed if this is cancelled meanwhile."""
        coroutine, future = self.coroutine, self.future
        loop = asyncio.get_running_loop()
        try:
            while True:
                if asyncio.isfuture(future):  # an asyncio Future or a host's own (granian)
                    woken: asyncio.Future[None] = loop.create_future()
                    future.add_done_callback(partial(_wake, woken))
                    await woken
                else:
                    await asyncio.sleep(0)  # a bare yield
                future = coroutine.send(None)
        except StopIteration as finished:
            result: T = finished.value
            return result
        finally:
            coroutine.close()


class Finished(Generic[T]):
    """A coroutine that finished at its first step, with its result."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


def start(coroutine: Coroutine[Any, Any, T]) -> Finished[T] | _Waiting[T]:
    """Runs `coroutine` up to its first suspension: its result when it finished (or what it
    raised), else the suspended coroutine, to `finish()` (in a task when something must be
    watched meanwhile)."""
    try:
        future = coroutine.send(None)
    except StopIteration as finished:
        return Finished(finished.value)
    except BaseException:
        coroutine.close()
        raise
    return _Waiting(coroutine, future)


def _wake(woken: asyncio.Future[None], _: object) -> None:
    if not woken.done():
        woken.set_result(None)


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable


def _first_step(sent: Awaitable[None]) -> _Waiting[None] | None:
    """Runs `sent` up to its first suspension: None when it finished without one."""
    coroutine = sent if isinstance(sent, Coroutine) else _awaited(sent)
    try:
        future = coroutine.send(None)
    except StopIteration:
        return None
    except BaseException:
        coroutine.close()
        raise
    return _Waiting(coroutine, future)
