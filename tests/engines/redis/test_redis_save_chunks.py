"""The periodic save and the rewrite after an outage go in bounded commands (issue 34): with
17,000 sessions a process saved and wrote again every record in one script and one pipeline,
which outlasted the command timeout; the engine took Redis for lost and began again, for good."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from bayeux.engines.redis import upkeep

from ...helpers.redis_nodes import Client, node, redis_of, wait_ready


def test_a_save_of_many_sessions_and_their_rewrite_go_a_chunk_a_command(
    redis_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upkeep, "SAVE_CHUNK", 5)
    with node(redis_server.url) as a:
        wait_ready(a)
        engine = redis_of(a)
        calls: list[int] = []
        real = engine._scripts["SAVE"]

        def counting(*, args: list[Any], **rest: Any) -> Any:
            left = int(args[5])
            calls.append(left + (len(args) - 6 - left) // 6)  # sessions in this command
            return real(args=args, **rest)

        a.call(engine._scripts.__setitem__, "SAVE", counting)
        clients = [Client(a.url) for _ in range(23)]
        for client in clients:
            assert client.subscribe(a.url, "/chunked")["successful"] is True
        # Redis loses every record (a restart without persistence): the engine's save after
        # an outage writes them all again, five sessions a command.
        store = redis.Redis.from_url(redis_server.url)
        store.flushdb()
        calls.clear()
        a.await_(lambda: engine._save(everything=True))
        assert calls and max(calls) <= 5
        assert sum(calls) >= 23
        for client in clients:
            assert store.hget(f"bayeux-test:session:{client.id}", "owner") == engine.me.encode()
            assert store.smembers(f"bayeux-test:subs:{client.id}") == {b"/chunked"}
        assert store.get(f"bayeux-test:floor:{engine.me}") is not None
        store.close()
