"""The standalone server's garbage collection policy (connection/collector.py): what survives a
full collection is frozen, so that the next ones do not walk every connection's objects again
(at 17,000 WebSockets a process stopped for hundreds of ms in each full collection, issue 34),
and frozen objects go back to the collector every renew period."""

from __future__ import annotations

import asyncio
import gc
import weakref

from bayeux.connection.collector import Collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_what_survives_a_full_collection_is_not_walked_by_the_next_ones() -> None:
    async def scenario() -> tuple[int, int, int]:
        collector = Collector(renew_seconds=3600)
        collector.start()
        try:
            long_lived = [Node() for _ in range(50_000)]  # a connection's objects, many times
            gc.collect()  # a full collection: its survivors are frozen on the next turn
            await asyncio.sleep(0)
            in_generations = len(gc.get_objects())
            frozen = gc.get_freeze_count()
            del long_lived
            return in_generations, frozen, collector.freezes
        finally:
            collector.stop()

    in_generations, frozen, freezes = asyncio.run(scenario())
    assert freezes >= 1
    assert frozen >= 50_000
    assert in_generations < 10_000  # what a full collection still walks
    assert gc.get_freeze_count() == 0  # stop() gave everything back


def test_a_frozen_cycle_is_freed_once_the_renew_period_hands_it_back() -> None:
    async def scenario() -> tuple[bool, bool]:
        collector = Collector(renew_seconds=3600)
        collector.start()
        try:
            a, b = Node(), Node()
            a.other, b.other = b, a
            gc.collect()
            await asyncio.sleep(0)  # frozen now
            gone = weakref.ref(a)
            del a, b
            gc.collect()
            kept_while_frozen = gone() is not None
            collector.renew_seconds = 0  # the period has passed: the next full collection
            gc.collect()  # ... hands the frozen objects back
            await asyncio.sleep(0)
            gc.collect()  # and this one walks them
            return kept_while_frozen, gone() is None
        finally:
            collector.stop()

    kept_while_frozen, freed = asyncio.run(scenario())
    assert kept_while_frozen
    assert freed
