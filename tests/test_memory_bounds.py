"""What the bounds count is what the memory costs: a queued delivery and a subscription are
charged, within 2x, the bytes tracemalloc sees them take (issue: bounds in bytes of memory)."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable

from bayeux import BayeuxServer, Settings
from bayeux.codec import dumps
from bayeux.core.tree import subscription_cost


def _traced_growth(step: Callable[[int], None], count: int) -> float:
    """Bytes of memory one step keeps, on average over `count` steps."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            step(i)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


def test_encoded_json_takes_its_own_length_not_orjsons_buffer() -> None:
    kept: list[bytes] = []
    per_message = _traced_growth(lambda i: kept.append(dumps({"channel": "/a", "data": i})), 5000)
    assert per_message < 100, per_message  # orjson's own output: ~4 KiB each


def test_a_queued_delivery_costs_what_the_queue_counts() -> None:
    """A session that queues many small messages published by another holds, per message,
    within 2x of what its queue bound counts (it held ~150x before: orjson's buffers and the
    decoded message)."""

    async def scenario() -> None:
        server = BayeuxServer(Settings(max_queue_bytes=-1))
        subscriber = server.create_session()
        server.subscribe(subscriber, "/q")
        publisher = server.create_session()
        batch = [{"channel": "/q", "clientId": publisher.id, "data": "x" * 20}]

        # The messages come decoded from the wire, as a transport hands them over; handle
        # never suspends without hooks or an engine, so one send() runs it to its end.
        def publish(i: int) -> None:
            coroutine = server.handle([dict(m, id=str(i)) for m in batch])
            try:
                coroutine.send(None)
            except StopIteration:
                return
            raise AssertionError("handle suspended")

        count = 5000
        per_message = _traced_growth(publish, count)
        assert len(subscriber.queue) == count
        charged = subscriber.queue_bytes / count
        assert charged / 2 <= per_message <= charged * 2, (per_message, charged)

    asyncio.run(scenario())


def test_a_message_of_many_small_values_costs_its_bytes_in_a_queue() -> None:
    """The decoded form of `[[],[],...]` costs ~20x its JSON: a queue keeps only the JSON."""

    async def scenario() -> None:
        server = BayeuxServer(Settings(max_queue_bytes=-1))
        subscriber = server.create_session()
        server.subscribe(subscriber, "/q")
        data = [[] for _ in range(2000)]
        per_message = _traced_growth(lambda i: server.publish("/q", data), 50)
        charged = subscriber.queue_bytes / 50
        assert per_message <= charged * 2, (per_message, charged)

    asyncio.run(scenario())


def _subscribe_cost(patterns: Callable[[int], str], count: int = 500) -> tuple[float, float]:
    server = BayeuxServer(Settings(max_subscriptions=100_000))
    session = server.create_session()
    # Pattern strings are made outside the measure, as a decoded request holds them already.
    made = [patterns(i) for i in range(count)]
    used = _traced_growth(lambda i: server.subscribe(session, made[i]), count)
    return used, session.subscription_bytes / count


def test_a_subscription_costs_no_more_than_it_is_charged() -> None:
    for name, pattern in [
        ("32 segments", lambda i: "/" + "/".join(f"s{i}x{j}" for j in range(32))),
        ("3 segments", lambda i: f"/chat/room{i}/x"),
        ("1 segment", lambda i: f"/r{i}"),
    ]:
        used, charged = _subscribe_cost(pattern)
        # An upper bound: never below what it uses, and not far above where nothing is shared.
        assert used <= charged <= used * 2, (name, used, charged)


def test_subscriptions_past_their_memory_bound_are_refused() -> None:
    async def scenario() -> None:
        deep = "/" + "/".join(f"s{j}" for j in range(32))
        limit = 3 * subscription_cost(deep + "0") + 10
        server = BayeuxServer(Settings(max_subscription_bytes=limit))
        session = server.create_session()
        replies = []
        for i in range(4):
            (reply,) = (
                await server.handle(
                    [
                        {
                            "channel": "/meta/subscribe",
                            "clientId": session.id,
                            "subscription": deep + str(i),
                        }
                    ]
                )
            ).replies
            replies.append(reply)
        assert [r["successful"] for r in replies] == [True, True, True, False]
        assert replies[3]["error"].endswith(":Too many subscriptions")
        assert session.subscription_bytes <= limit
        # Unsubscribing gives the memory back.
        await server.handle(
            [{"channel": "/meta/unsubscribe", "clientId": session.id, "subscription": deep + "0"}]
        )
        (reply,) = (
            await server.handle(
                [{"channel": "/meta/subscribe", "clientId": session.id, "subscription": deep + "3"}]
            )
        ).replies
        assert reply["successful"] is True

    asyncio.run(scenario())
