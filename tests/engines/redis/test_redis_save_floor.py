"""A broadcast being written when the periodic save runs costs no record writes (issue 34):
its subscribers keep following the floor, which the save holds below the broadcast. Each of
them had its record written with its own position, then following again at the next save:
17,800 record writes for one broadcast to 24,000 WebSockets over 6 processes."""

from __future__ import annotations

import redis

from bayeux.core.message import Delivery
from bayeux.core.session import ServerSession
from bayeux.engines.redis.records import held_floor, saved_state

from ...helpers.redis_nodes import Client, node, redis_of, wait_ready


def _logged(position: int) -> Delivery:
    delivery = Delivery({"channel": "/feed", "data": position})
    delivery.position = position
    return delivery


def test_a_queue_newer_than_the_last_floor_follows_it_and_holds_the_next_one() -> None:
    session = ServerSession("a" * 40, 0)
    session.enqueue(_logged(7 << 22))
    assert saved_state(session, floor=5 << 22).follows_floor == 1
    assert held_floor(session, 9 << 22) == (7 << 22) - 1
    # Behind the last floor saved (a slow reader): its own position, as before.
    assert saved_state(session, floor=8 << 22).follows_floor == 0


def test_the_save_holds_the_floor_below_a_broadcast_being_written(redis_server) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        client = Client(a.url)
        client.connect(a.url, timeout=0)
        a.await_(lambda: engine._save(everything=False))
        store = redis.Redis.from_url(redis_server.url)
        key = f"bayeux-test:session:{client.id}"
        assert store.hget(key, "follows") == b"1"
        writes = int(store.info("commandstats").get("cmdstat_hset", {}).get("calls", 0))
        last = a.call(lambda: engine._floor)
        # A broadcast read from the log after that save is still in the session's queue.
        session = a.call(lambda: a.endpoint.server.sessions[client.id])
        position = last + (1 << 22)
        a.call(lambda: session.queue.append(_logged(position)))
        a.call(setattr, engine, "cursor", position + (2 << 22))
        a.await_(lambda: engine._save(everything=False))
        assert store.hget(key, "follows") == b"1"  # no record written for it
        after = int(store.info("commandstats").get("cmdstat_hset", {}).get("calls", 0))
        assert after == writes
        saved_floor = store.get(f"bayeux-test:floor:{engine.me}")
        assert saved_floor is not None and int(saved_floor) == position - 1
        a.call(session.queue.clear)
        store.close()
