"""What a process writes when Redis is reachable again (issue 34): after a command timeout (its
own loop late under load as often as Redis away), only the records that missed a change are
written again; every record only when Redis restarted or lost this process's data. At 17,000
sessions a process wrote every record again after each timeout, and that load brought on the
next timeout, for good. And a slow command, while Redis answers the others, fails alone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from bayeux.core.engine import EngineUnavailable

from ...helpers.redis_nodes import Client, node, redis_of, wait_ready


def _reconnected(engine: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not (engine.available and not engine._reconcile):
        assert time.monotonic() < deadline, "the engine did not reconnect"
        time.sleep(0.02)


def test_after_a_timeout_only_the_records_that_missed_a_change_are_written_again(
    redis_server,
) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        clients = [Client(a.url) for _ in range(20)]
        for client in clients:
            client.connect(a.url, timeout=0)
        time.sleep(0.3)  # saved
        rewritten: list[str] = []
        real = engine._recreate

        async def recording(client_ids: list[str]) -> None:
            rewritten.extend(client_ids)
            await real(client_ids)

        a.call(setattr, engine, "_recreate", recording)
        # A command timed out: the engine takes Redis for lost until its next tick.
        a.call(engine._unavailable, TimeoutError())
        changed = clients[3]
        reply = changed.subscribe(a.url, "/while-away")  # applied here, recorded later
        assert reply["successful"] is True
        _reconnected(engine)
        assert rewritten == [changed.id]  # not the 20 records
        store = redis.Redis.from_url(redis_server.url)
        assert store.smembers(f"bayeux-test:subs:{changed.id}") == {b"/while-away"}
        # Redis restarted (another run id) and lost everything: every record again.
        rewritten.clear()
        store.flushall()
        a.call(setattr, engine, "_redis_run", "another-server")
        a.call(engine._unavailable, ConnectionError())
        _reconnected(engine)
        assert sorted(rewritten) == sorted(c.id for c in clients)
        for client in clients:
            assert store.hget(f"bayeux-test:session:{client.id}", "owner") == engine.me.encode()
        store.close()


def test_a_slow_command_fails_alone_while_redis_answers_the_others(redis_server) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        client = Client(a.url)
        client.connect(a.url, timeout=0)
        time.sleep(0.2)  # the periodic save has had answers meanwhile

        async def slow() -> None:
            await engine._command(asyncio.sleep(engine.command_timeout + 1))

        with pytest.raises(EngineUnavailable):
            a.await_(slow)
        assert a.call(lambda: engine.available) is True  # Redis was not taken for lost
        reply = client.subscribe(a.url, "/after")
        assert reply["successful"] is True


def test_a_write_that_timed_out_is_made_again_by_the_next_save(redis_server) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        client = Client(a.url)
        client.connect(a.url, timeout=0)
        session = a.call(lambda: a.endpoint.server.sessions[client.id])
        a.call(lambda: session.subscriptions.add("/missed"))  # applied here only
        a.call(engine._unsynced.add, client.id)  # as a timed-out subscribe leaves it
        store = redis.Redis.from_url(redis_server.url)
        deadline = time.monotonic() + 3
        while store.smembers(f"bayeux-test:subs:{client.id}") != {b"/missed"}:
            assert time.monotonic() < deadline, "the record was not written again"
            time.sleep(0.02)
        assert a.call(lambda: client.id not in engine._unsynced)
        store.close()
