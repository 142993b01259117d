"""Conflation across processes on Redis: a conflated queue holds log entries out of log order
(a key's newest in its oldest's place), while a session's record keeps one log position, read
from what it was last handed. A slow reader handed over to another process then reads the log
again from there."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bayeux.testing import ServerThread

from ...helpers.redis_nodes import Client, node, wait_ready

pytestmark = pytest.mark.redis


def _conflated(*nodes: ServerThread) -> None:
    for n in nodes:
        server = n.endpoint.server
        n.call(
            lambda server=server: server.channel("/p/*").conflate(
                key=lambda m: m["channel"], backlog=0, after=0
            )
        )


def _queued(n: ServerThread, client_id: str, count: int, within: float = 5) -> list[Any]:
    """What the session's queue holds on `n` once it holds `count` messages."""
    deadline = time.monotonic() + within
    while True:
        got = n.call(
            lambda: [d.message["data"] for d in n.endpoint.server.sessions[client_id].queue]
        )
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def _by_key(received: list[Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for data in received:
        out.setdefault(data["k"], []).append(data["n"])
    return out


def test_a_slow_reader_handed_over_after_conflation_gets_no_older_value_again(
    redis_server,
) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        _conflated(a, b)
        reader = Client(a.url)
        assert reader.subscribe(a.url, "/p/*")["successful"] is True
        reader.connect(a.url, timeout=0)
        publisher = Client(a.url)
        for n, k in enumerate("ABAA", start=1):  # log entries 1..4: A1 B2 A3 A4
            assert publisher.publish(a.url, f"/p/{k}", {"k": k, "n": n})["successful"]
        assert len(_queued(a, reader.id, 3)) >= 3
        reader.connect(a.url, timeout=0)  # takes [A4, B2]: conflated, out of log order
        assert _by_key(reader.received) == {"A": [4], "B": [2]}
        assert publisher.publish(a.url, "/p/C", {"k": "C", "n": 5})["successful"]
        assert _queued(a, reader.id, 1) == [{"k": "C", "n": 5}]  # its queue is not empty
        reader.poll_until([b.url], 4)  # handed over to B, which reads the log after it
        reader.connect(b.url, timeout=0)
        got = _by_key(reader.received)
        assert got["C"] == [5]
        assert got["A"] == [4], f"A's older value after its newest: {reader.received}"


def test_a_slow_reader_handed_over_after_conflation_loses_no_last_value(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        _conflated(a, b)
        reader = Client(a.url, ack=True)
        assert reader.subscribe(a.url, "/p/*")["successful"] is True
        reader.connect(a.url, timeout=0)
        publisher = Client(a.url)
        for n in range(1, 41):
            k = "ABCD"[n % 4] if n < 37 else "A"
            assert publisher.publish(a.url, f"/p/{k}", {"k": k, "n": n})["successful"]
        _queued(a, reader.id, 5)
        reader.connect(a.url, timeout=0)  # conflated, acknowledged with the next connect
        assert publisher.publish(a.url, "/p/E", {"k": "E", "n": 41})["successful"]
        _queued(a, reader.id, 1)
        reader.poll_until([b.url, a.url], 6)
        for url in (b.url, a.url, b.url):
            reader.connect(url, timeout=0)
        got = _by_key(reader.received)
        newest = {"A": 40, "B": 33, "C": 34, "D": 35, "E": 41}
        assert {k: v[-1] for k, v in got.items()} == newest
        assert all(v == sorted(v) for v in got.values()), reader.received
