"""A broadcast to many subscribers lets the loop run between slices of its writes: tens of
thousands of WebSocket writes, or of long-poll answers, in one loop turn stalled everything
else the process had to do (benchmarks/scale.py, issue 34)."""

from __future__ import annotations

import asyncio

from bayeux.core.session import Wakeup
from bayeux.transports import waiting, websocket


def test_a_small_broadcast_to_many_websockets_is_written_a_share_of_sockets_a_turn() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        flusher = websocket._Flusher(loop)
        flushed: list[int] = []

        class Socket:
            def __init__(self, n: int) -> None:
                self.n = n

            def _flush(self, now: float) -> int:
                flushed.append(self.n)
                return 200  # a small message: the byte share alone would take them all

        count = 3 * websocket.FLUSH_SHARE + 10
        for n in range(count):
            flusher.add(Socket(n))  # type: ignore[arg-type]
        seen_by_others: list[int] = []
        await asyncio.sleep(0)  # the flusher's first turn runs
        while len(flushed) < count:
            seen_by_others.append(len(flushed))
            await asyncio.sleep(0)
        assert flushed == list(range(count))
        assert seen_by_others[0] == websocket.FLUSH_SHARE
        steps = [b - a for a, b in zip(seen_by_others, seen_by_others[1:], strict=False)]
        assert steps and max(steps) <= websocket.FLUSH_SHARE

    asyncio.run(scenario())


def test_held_connects_woken_at_once_are_answered_a_share_a_turn() -> None:
    async def scenario() -> None:
        count = 3 * waiting.WAKE_SHARE + 5
        waiters = [waiting.FutureWaiter() for _ in range(count)]
        answered: list[int] = []

        async def held(n: int, waiter: waiting.FutureWaiter) -> None:
            assert await asyncio.wait_for(waiter.future, 30) is Wakeup.MESSAGES
            answered.append(n)

        tasks = [asyncio.ensure_future(held(n, w)) for n, w in enumerate(waiters)]
        await asyncio.sleep(0)  # every connect held
        for waiter in waiters:  # one broadcast wakes them all (the core's fan-out)
            waiter.wake()
            waiter.wake()  # woken twice: answered once
        progress: list[int] = []
        while len(answered) < count:
            assert len(progress) < 10_000, "the held connects were never all answered"
            await asyncio.sleep(0)
            progress.append(len(answered))
        await asyncio.gather(*tasks)
        assert sorted(answered) == list(range(count))
        assert answered[: waiting.WAKE_SHARE] == list(range(waiting.WAKE_SHARE))  # in order
        steps = [b - a for a, b in zip([0, *progress], progress, strict=False)]
        assert max(steps) <= waiting.WAKE_SHARE
        assert len([s for s in steps if s]) >= 4  # other work ran between the shares

    asyncio.run(scenario())


def test_a_held_connect_displaced_before_its_wake_comes_is_answered_as_displaced() -> None:
    async def scenario() -> Wakeup:
        waiter = waiting.FutureWaiter()
        waiter.wake()  # its turn comes later
        waiter.displace()  # now
        return await asyncio.wait_for(waiter.future, 30)

    assert asyncio.run(scenario()) is Wakeup.DISPLACED
