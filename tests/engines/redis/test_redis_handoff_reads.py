"""What a handoff reads again from the log (issue 34): a session that keeps up moves at its
process's read position, not at its last message's. Before, a session on a quiet channel made
its next owner read every entry since its last message, whoever they were for (40 KB a
handoff with 300 entries in between, benchmarks/redis_costs.py; up to the whole log)."""

from __future__ import annotations

import redis

from ...helpers.redis_nodes import Client, node, wait_ready


def _xrange_bytes(client: redis.Redis) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_xrange", {})
    return int(stats.get("calls", 0)), int(client.info("stats")["total_net_output_bytes"])


def test_a_session_that_kept_up_is_handed_over_without_reading_the_log_again(
    redis_server,
) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        quiet = Client(a.url)
        assert quiet.subscribe(a.url, "/quiet")["successful"] is True
        quiet.connect(a.url, timeout=0)
        busy = Client(a.url)
        for n in range(300):  # a busy channel nobody here subscribes to
            assert busy.publish(b.url, "/busy", {"n": n, "text": "x" * 100})["successful"]
        assert quiet.connect(a.url, timeout=0)["successful"] is True  # it kept up on A
        client = redis.Redis.from_url(redis_server.url)
        calls_before, sent_before = _xrange_bytes(client)
        assert quiet.connect(b.url, timeout=0)["successful"] is True  # handed over to B
        calls_after, sent_after = _xrange_bytes(client)
        client.close()
        assert calls_after > calls_before  # B read the log after the session's position
        # ... and found nothing there: 300 entries of ~200 bytes were read again before.
        assert sent_after - sent_before < 10_000
        # Nothing was lost on the way: a message on its channel reaches it on B.
        assert busy.publish(a.url, "/quiet", "after")["successful"]
        assert quiet.poll_until([b.url], 1) == ["after"]
