"""The periodic save does no work per session a tick beyond those that changed, and none of it
in one loop turn for all (issue 34): with 17,000 sessions a process looked at every one of them
four times a second, and during a broadcast made the state of every subscriber in one turn;
the log reader fanned out every broadcast of an XREAD (up to 1,000) in one turn, and decoded
every other process's subscription changes to find they were not for it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from bayeux.core.message import Delivery
from bayeux.engines.redis import log as entries
from bayeux.engines.redis import records, upkeep

from ...helpers.redis_nodes import Client, node, redis_of, wait_ready


class _CountingSessions(dict[str, Any]):
    """The server's sessions, counting the walks over all of them."""

    walks = 0

    def values(self) -> Any:
        self.walks += 1
        return super().values()


def _logged(position: int) -> Delivery:
    delivery = Delivery({"channel": "/feed", "data": position})
    delivery.position = position
    return delivery


def _settled(a: Any, count: int) -> list[Client]:
    """`count` connected clients of node `a`, saved as following its floor; the engine's
    own periodic save stopped (each test runs its saves itself)."""
    engine = redis_of(a)
    clients = [Client(a.url) for _ in range(count)]
    for client in clients:
        assert client.subscribe(a.url, "/feed")["successful"] is True
        client.connect(a.url, timeout=0)
    keep = engine._tasks[2]
    a.call(keep.cancel)
    a.await_(lambda: engine._save(everything=False))
    a.await_(lambda: engine._save(everything=False))
    return clients


def test_an_idle_save_looks_at_no_session(redis_server) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        _settled(a, 20)
        server = a.endpoint.server
        counting = _CountingSessions(server.sessions)
        a.call(setattr, server, "sessions", counting)
        try:
            visits = getattr(engine, "save_visits", 0)
            for _ in range(3):
                a.await_(lambda: engine._save(everything=False))
            assert counting.walks == 0
            assert getattr(engine, "save_visits", 0) == visits
        finally:
            a.call(setattr, server, "sessions", dict(counting))


def test_a_save_during_a_broadcast_visits_its_queues_a_chunk_a_turn(
    redis_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upkeep, "SAVE_CHUNK", 4)
    monkeypatch.setattr(upkeep, "SCAN_SLICE", 4, raising=False)
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        clients = _settled(a, 24)
        sessions = a.call(lambda: a.endpoint.server.sessions)
        # A broadcast read after the last save, still queued for half of its subscribers.
        position = a.call(lambda: engine._floor) + (1 << 22)
        queued = [sessions[client.id] for client in clients[::2]]
        for session in queued:
            a.call(session.queue.append, _logged(position))
        a.call(setattr, engine, "cursor", position + (1 << 22))

        turns = 0
        seen: list[int] = []  # the loop turn of each session's state made
        real = records.saved_state

        def counted(session: Any, floor: int = 0) -> Any:
            seen.append(turns)
            return real(session, floor)

        monkeypatch.setattr(upkeep, "saved_state", counted)

        async def save_while_counting_turns() -> None:
            nonlocal turns
            done = False

            async def tick() -> None:
                nonlocal turns
                while not done:
                    turns += 1
                    await asyncio.sleep(0)

            ticker = asyncio.ensure_future(tick())
            await asyncio.sleep(0)
            try:
                await engine._save(everything=False)
            finally:
                done = True
                await ticker

        a.await_(save_while_counting_turns)
        assert len(seen) == len(queued)  # only the sessions with something queued
        assert len(set(seen)) >= len(queued) // 4  # four a turn
        saved_floor = a.call(lambda: engine._floor)
        assert saved_floor == position - 1  # held below the broadcast, as before
        for session in queued:
            a.call(session.queue.clear)


def test_the_reader_skips_others_subscriptions_and_fans_out_a_broadcast_a_call(
    redis_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        mine = Client(a.url)
        mine.subscribe(a.url, "/feed")
        loads: list[bytes] = []
        real = orjson.loads

        def counting(data: Any) -> Any:
            loads.append(bytes(data))
            return real(data)

        monkeypatch.setattr(entries, "orjson", type("Counting", (), {"loads": counting}))
        base = a.call(lambda: engine.cursor) + (1 << 22)

        def subscription(n: int, client_id: str) -> tuple[bytes, dict[bytes, bytes]]:
            fields = {b"s": client_id.encode(), b"p": b'["/elsewhere"]', b"r": b"{}"}
            return f"{(base >> 22) + n}-0".encode(), fields

        def broadcast(n: int) -> tuple[bytes, dict[bytes, bytes]]:
            message = {"channel": "/feed", "data": n}
            return f"{(base >> 22) + n}-0".encode(), {b"m": orjson.dumps(message), b"o": b"x"}

        items = [
            subscription(0, "ab" * 20),  # served elsewhere
            subscription(1, "cd" * 20),  # served elsewhere
            broadcast(2),
            subscription(3, mine.id),
            broadcast(4),
            broadcast(5),
        ]
        steps = []
        start = 0
        while start < len(items):
            start = a.call(engine._apply, items, start)
            steps.append(start)
        assert steps == [3, 5, 6]  # up to each broadcast, one a call (a loop turn)
        # Decoded: the three broadcasts and the subscription of the session served here.
        assert len(loads) == 3 + 2
        session = a.call(lambda: a.endpoint.server.sessions[mine.id])
        assert "/elsewhere" in session.subscriptions
        assert [d.message["data"] for d in session.queue] == [2, 4, 5]
