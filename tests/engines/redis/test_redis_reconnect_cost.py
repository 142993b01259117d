"""What a process writes when Redis is reachable again (issue 34): after a command timeout (its
own loop late under load as often as Redis away), only the records that missed a change are
written again; every record only when Redis restarted or lost this process's data. At 17,000
sessions a process wrote every record again after each timeout, and that load brought on the
next timeout, for good."""

from __future__ import annotations

import time
from typing import Any

import redis

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
