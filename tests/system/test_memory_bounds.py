"""What the bounds count is what the memory costs: a queued delivery and a subscription are
charged, within 2x, the bytes tracemalloc sees them take (issue: bounds in bytes of memory)."""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
from collections.abc import Callable

from bayeux import BayeuxServer, Settings
from bayeux.core.codec import dumps
from bayeux.core.limits import SESSION_OVERHEAD
from bayeux.core.peer import Peer
from bayeux.core.tree import subscription_cost
from bayeux.testing import start_cli, stop_process

from ..helpers.http import handshake, post_json
from ..helpers.servers import HANDSHAKE


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
        data: list[list[int]] = [[] for _ in range(2000)]
        per_message = _traced_growth(lambda i: _ignore(server.publish("/q", data)), 50)
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


# ----------------------------------------------------------------------- per address


async def _one(server: BayeuxServer, message: dict, address: str) -> dict:
    (reply,) = (await server.handle([message], Peer(address=address))).replies
    return reply


def test_an_address_budget_counts_everything_its_sessions_hold_and_gets_it_back() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_handshakes_per_address=-1))
        ids = []
        for _ in range(3):
            reply = await _one(server, dict(HANDSHAKE, ext={"ack": True}), "10.0.0.1")
            ids.append(reply["clientId"])
        budget = server.budgets.of("10.0.0.1")
        assert budget.used == 3 * SESSION_OVERHEAD
        for cid in ids:
            sub = {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/a/b"}
            assert (await _one(server, sub, "10.0.0.1"))["successful"] is True
        for i in range(5):
            server.publish("/a/b", {"i": i})
        sessions = [server.sessions[cid] for cid in ids]
        assert budget.used == sum(SESSION_OVERHEAD + s.held_bytes() for s in sessions)
        # A connect sends the queue out; with ack it stays counted until acknowledged.
        connect = {"channel": "/meta/connect", "clientId": ids[0], "connectionType": "long-polling"}
        outcome = await server.handle([dict(connect, ext={"ack": -1})])
        assert outcome.connect is not None
        deliveries, _ = server.finish_connect(outcome.connect)
        assert len(deliveries) == 5 and sessions[0].queue_bytes == 0
        assert budget.used == sum(SESSION_OVERHEAD + s.held_bytes() for s in sessions)
        outcome = await server.handle([dict(connect, ext={"ack": 1})])
        assert outcome.connect is not None
        server.finish_connect(outcome.connect)
        assert sessions[0].queued_bytes() == 0
        assert budget.used == sum(SESSION_OVERHEAD + s.held_bytes() for s in sessions)
        for cid in ids:
            await _one(server, {"channel": "/meta/disconnect", "clientId": cid}, "10.0.0.1")
        assert budget.used == 0 and len(server.budgets) == 0

    asyncio.run(scenario())


def test_an_address_over_its_budget_is_refused_and_others_are_not() -> None:
    async def scenario() -> None:
        limit = 64 * 1024
        server = BayeuxServer(
            Settings(
                max_handshakes_per_address=-1,
                max_address_bytes=limit,
                queue_full_policy="drop-newest",
            )
        )
        attacker = (await _one(server, HANDSHAKE, "10.0.0.1"))["clientId"]
        honest = (await _one(server, HANDSHAKE, "10.0.0.2"))["clientId"]
        for cid, address in ((attacker, "10.0.0.1"), (honest, "10.0.0.2")):
            sub = {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/q"}
            await _one(server, sub, address)
        for i in range(200):  # ~1 KiB each: more than the attacker's address may hold
            server.publish("/q", {"i": i, "pad": "x" * 800})
        attacker_budget = server.budgets.of("10.0.0.1")
        assert attacker_budget.used <= limit
        assert len(server.sessions[attacker].queue) < 200
        assert len(server.sessions[honest].queue) < 200  # the same bound for every address
        # Further handshakes and subscriptions from the full address are refused...
        refused = await _one(server, HANDSHAKE, "10.0.0.1")
        assert refused["successful"] is False
        assert refused["error"] == "503::Address over its memory budget"
        sub = {"channel": "/meta/subscribe", "clientId": attacker, "subscription": "/o/t/h/e/r"}
        assert (await _one(server, sub, "10.0.0.1"))["successful"] is False
        # ...and another address is served.
        assert (await _one(server, HANDSHAKE, "10.0.0.3"))["successful"] is True

    asyncio.run(scenario())


# ---------------------------------------------------- one address against a real server


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _attack(url: str, sessions: int) -> int:
    """From one address: sessions that each subscribe to 30 deep channels of their own and
    queue 200 messages of ~1 KiB that nobody reads (memory unique to each session). Returns
    how many requests were refused (an HTTP error, or a connection closed on accept)."""
    refused = 0
    for n in range(sessions):
        deep = ["/" + "/".join(f"s{n}x{i}y{j}" for j in range(32)) for i in range(30)]
        own = f"/own/{n}"
        try:
            reply = post_json(url, [dict(HANDSHAKE)]).json()[0]
            if not reply.get("successful"):
                refused += 1
                continue
            cid = reply["clientId"]
            for subscription in (deep, own):
                post_json(
                    url,
                    [{"channel": "/meta/subscribe", "clientId": cid, "subscription": subscription}],
                )
            data = {"i": 0, "p": "x" * 1000}
            post_json(url, [{"channel": own, "clientId": cid, "data": data}] * 200)
        except OSError:
            refused += 1
    return refused


def _growth(max_address_bytes: int) -> int:
    process, url = start_cli(
        "--max-address-bytes", str(max_address_bytes), "--max-interval", "60000"
    )
    try:
        handshake(url)  # warm up: imports, first allocations
        before = _rss(process.pid)
        refused = _attack(url, 150)
        assert refused if max_address_bytes > 0 else not refused
        return _rss(process.pid) - before
    finally:
        stop_process(process)


def test_what_one_address_costs_is_held_to_its_budget() -> None:
    """The Limits table's promise: one address's sessions hold at most max_address_bytes (plus
    the allocator's slack). The same attack with no budget shows what it would cost."""
    budget = 8 * 1024 * 1024
    bounded = _growth(budget)
    unbounded = _growth(-1)
    assert unbounded > 5 * budget, unbounded  # the attack is real
    assert bounded < 2 * budget + 4 * 1024 * 1024, (bounded, unbounded)


def test_a_broadcast_held_by_many_sessions_of_one_address_is_charged_about_once() -> None:
    """Many users behind one address (a NAT) subscribed to a busy channel: each broadcast is
    one object in memory, so the address is charged its size once plus a slot per queue, not
    its size per session (which disconnected them all in a burst)."""

    async def scenario() -> None:
        server = BayeuxServer(
            Settings(max_handshakes_per_address=-1, max_address_bytes=4 * 1024 * 1024)
        )
        ids = [(await _one(server, HANDSHAKE, "10.0.0.9"))["clientId"] for _ in range(100)]
        for cid in ids:
            sub = {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/busy"}
            await _one(server, sub, "10.0.0.9")
        for i in range(100):
            server.publish("/busy", {"i": i, "pad": "x" * 1000})
        sessions = [server.sessions[cid] for cid in ids]
        assert all(len(s.queue) == 100 for s in sessions)  # nobody dropped
        charged_per_session = sum(s.queue_bytes for s in sessions)  # ~11.5 MiB
        budget = server.budgets.of("10.0.0.9")
        assert budget.used < charged_per_session / 10, (budget.used, charged_per_session)
        assert budget.used == sum(SESSION_OVERHEAD + s.held_bytes() for s in sessions)
        for cid in ids:
            await _one(server, {"channel": "/meta/disconnect", "clientId": cid}, "10.0.0.9")
        assert budget.used == 0

    asyncio.run(scenario())


def test_sessions_without_an_address_leave_the_unbounded_count_as_it_was() -> None:
    """Sessions made by the server itself (or taken over from another process) have no
    address: what they hold is counted and given back, and their end counts no overhead."""
    from bayeux.core.limits import UNBOUNDED

    before = UNBOUNDED.used
    server = BayeuxServer(Settings())
    session = server.create_session()
    server.subscribe(session, "/n/a")
    server.publish("/n/a", {"x": 1})
    assert UNBOUNDED.used > before
    server.remove_session(session)
    assert UNBOUNDED.used == before


def _ignore(value: object) -> None:
    """A call made for its effect, its result dropped."""
