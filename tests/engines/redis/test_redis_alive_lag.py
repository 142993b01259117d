"""A process whose loop runs late says it is alive for longer (issue 34): with a 3 s alive key,
workers seconds late under load were taken for dead, their sessions made orphans and some of
them forgotten while they were still served."""

from __future__ import annotations

import time

import redis

from bayeux.engines.redis.upkeep import MAX_ALIVE_MS, alive_for

from ...helpers.redis_nodes import node, redis_of, wait_ready


def test_the_alive_key_lives_a_few_times_the_loops_lateness_within_bounds() -> None:
    assert alive_for(3000, 0.0) == 3000
    assert alive_for(3000, 2.0) == 6000
    assert alive_for(3000, 3600.0) == MAX_ALIVE_MS


def test_a_process_whose_loop_was_late_renews_its_alive_key_for_longer(redis_server) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        store = redis.Redis.from_url(redis_server.url)
        key = f"bayeux-test:alive:{engine.me}"
        assert 0 < store.pttl(key) <= engine._alive_ms
        a.call(time.sleep, 2.5)  # the loop is held: its next tick comes 2.5 s late
        deadline = time.monotonic() + 2
        while store.pttl(key) <= engine._alive_ms:
            assert time.monotonic() < deadline, "renewed for no longer than before"
            time.sleep(0.02)
        assert store.pttl(key) > 6000
        store.close()
