"""Processes dying and restarting under a deployment on Redis: `python -m bayeux --redis`
processes killed with SIGKILL, drained with SIGTERM one after the other, and `--workers`.
Every message is counted."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bayeux.core.engine import position_of
from bayeux.engines.redis.keys import Keys
from bayeux.testing import child_pids, free_port, stop_process, wait_for_port
from spec_tests.runner import FAIL, INCOMPLETE, run_suite

from ...helpers.http import post_json, request
from ...helpers.redis_nodes import (
    OPTIONS,
    SUITE_OPTIONS,
    Client,
    connect_anywhere,
    serve,
    wait_healthy,
)
from ...helpers.redisproc import RedisServer

pytestmark = pytest.mark.redis


def first_occurrences(items: list[int]) -> list[int]:
    seen: set[int] = set()
    return [i for i in items if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def test_sigkill_loses_nothing_that_was_queued(redis_server) -> None:
    a, url_a = serve(redis_server.url)
    b, url_b = serve(redis_server.url)
    try:
        client = Client(url_a)
        client.subscribe(url_a, "/feed")
        client.connect(url_a)
        publisher = Client(url_b)
        for i in range(50):
            assert publisher.publish(url_b, "/feed", i)["successful"] is True
        time.sleep(0.3)  # queued in A, waiting for the client's next connect
        a.kill()
        a.wait(10)
        assert client.poll_until([url_b], 50) == list(range(50))
        client.connect(url_b)
        assert client.received == list(range(50))  # and nothing twice
    finally:
        stop_process(a)
        stop_process(b)


def test_caught_up_sessions_follow_the_floor_through_a_sigkill(redis_server) -> None:
    # Subscribers that keep up are saved as following their process's floor, and a SIGKILL
    # loses and repeats nothing for them: the claim takes the floor as their position.
    import redis

    store: Any = redis.Redis.from_url(redis_server.url)  # replies are bytes
    a, url_a = serve(redis_server.url, "--redis-sync-interval", "50")
    b, url_b = serve(redis_server.url, "--redis-sync-interval", "50")
    try:
        clients = [Client(url_a) for _ in range(5)]
        for client in clients:
            client.subscribe(url_a, "/feed")
            client.connect(url_a)
        publisher = Client(url_b)

        def publish_and_catch_up(numbers: range) -> None:
            for i in numbers:
                assert publisher.publish(url_b, "/feed", i)["successful"] is True
            for client in clients:
                assert client.poll_until([url_a], numbers.stop)[-1] == numbers.stop - 1
            time.sleep(0.3)  # several saves

        publish_and_catch_up(range(0, 40))
        keys = [f"bayeux:session:{c.id}" for c in clients]
        owner = store.hget(keys[0], "owner").decode()
        assert [store.hget(key, "follows") for key in keys] == [b"1"] * 5
        (last_id,) = store.xrevrange("bayeux:log", count=1)
        newest = position_of(last_id[0].decode())
        assert int(store.get(Keys("bayeux").floor(owner))) >= newest
        a.kill()
        a.wait(10)
        assert publisher.publish(url_b, "/feed", 40)["successful"] is True
        for client in clients:
            assert client.poll_until([url_b], 41) == list(range(41))
            client.connect(url_b, timeout=0)
            assert client.received == list(range(41))  # and nothing twice
    finally:
        stop_process(a)
        stop_process(b)


def test_sigkill_mid_stream_with_ack_loses_and_reorders_nothing(redis_server) -> None:
    a, url_a = serve(redis_server.url)
    b, url_b = serve(redis_server.url)
    total = 400
    try:
        client = Client(url_a, ack=True)
        client.subscribe(url_a, "/feed")
        client.connect(url_a)
        publisher = Client(url_b)

        def publish_all() -> None:
            for i in range(total):
                assert publisher.publish(url_b, "/feed", i)["successful"] is True
                time.sleep(0.003)

        thread = threading.Thread(target=publish_all)
        thread.start()
        deadline = time.monotonic() + 30
        killed = False
        while len(set(client.received)) < total and time.monotonic() < deadline:
            if not killed and len(client.received) >= total // 3:
                a.kill()  # mid-stream: some batches in flight, some not yet acknowledged
                killed = True
            connect_anywhere(client, [url_a, url_b] if not killed else [url_b])
        thread.join()
        assert killed
        # Every message published after the subscription, in publish order; a batch whose
        # acknowledgement died with A may come twice (at least once), never out of order.
        assert first_occurrences(client.received) == list(range(total))
        assert len(client.received) - total < total // 4
    finally:
        stop_process(a)
        stop_process(b)


def test_a_rolling_restart_loses_and_repeats_nothing(redis_server) -> None:
    a, url_a = serve(redis_server.url)
    b, url_b = serve(redis_server.url)
    port_a = int(url_a.split(":")[2].split("/")[0])
    urls = [url_a, url_b]
    target = {"url": url_b}
    total = 300
    published: list[int] = []
    processes = [a, b]
    try:
        client = Client(url_a)
        client.subscribe(url_a, "/feed")
        client.connect(url_a)
        publisher = Client(url_b)

        def publish_all() -> None:
            for i in range(total):
                assert publisher.publish(target["url"], "/feed", i)["successful"] is True
                published.append(i)
                time.sleep(0.01)

        thread = threading.Thread(target=publish_all)
        thread.start()

        def restart_a_then_b() -> None:
            time.sleep(0.8)
            a.send_signal(signal.SIGTERM)  # A drains: its sessions go to B
            assert a.wait(10) == 0
            new_a, _ = serve(redis_server.url, port=port_a)
            processes.append(new_a)
            target["url"] = url_a
            time.sleep(0.3)
            b.send_signal(signal.SIGTERM)  # then B: its sessions go to the new A
            assert b.wait(10) == 0

        restarter = threading.Thread(target=restart_a_then_b)
        restarter.start()
        deadline = time.monotonic() + 40
        while len(client.received) < total and time.monotonic() < deadline:
            connect_anywhere(client, urls)
        thread.join()
        restarter.join()
        client.connect(url_a)
        assert published == list(range(total))
        assert client.received == list(range(total))
    finally:
        for process in processes:
            stop_process(process)


def test_workers_share_one_port_and_stop_together(redis_server) -> None:
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "warning"]
        + ["--redis", redis_server.url, "--workers", "2", *OPTIONS, *SUITE_OPTIONS]
    )
    try:
        wait_for_port(port, parent)
        url = f"http://127.0.0.1:{port}/cometd"
        wait_healthy(url)
        workers = child_pids(parent.pid)
        assert len(workers) == 2
        # Each request on a new connection, spread by the kernel over both workers: the
        # suite's core rules pass as they do against one process.
        results = asyncio.run(run_suite(url, profiles=("core",)))
        bad = [
            f"{r.rule} {r.transport}: {r.detail}"
            for r in results
            if r.outcome in (FAIL, INCOMPLETE)
        ]
        assert not bad, "\n".join(bad)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(15) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        stop_process(parent)


def test_workers_above_one_need_redis() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bayeux", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--workers above 1 needs --redis" in result.stderr


def test_workers_need_a_fixed_port() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bayeux", "--workers", "2", "--redis", "redis://127.0.0.1:1/0"]
        + ["--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--workers needs a fixed --port" in result.stderr


def test_a_process_opens_its_port_once_redis_serves_it() -> None:
    # With --workers the kernel hands connections to every worker that has opened the port:
    # one still reaching Redis would answer them all with retry advice.
    redis_server = RedisServer()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "error"]
        + ["--redis", redis_server.url, *OPTIONS]
    )
    try:
        time.sleep(1.0)
        assert process.poll() is None
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        redis_server.start()
        wait_for_port(port, process)
        assert request(f"http://127.0.0.1:{port}/cometd/health", method="GET").status == 200
    finally:
        stop_process(process)
        redis_server.stop()


def test_a_process_serves_with_retry_advice_when_redis_stays_away() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "error"]
        + ["--redis", f"redis://127.0.0.1:{free_port()}/0", *OPTIONS]
        + ["--redis-ready-wait", "300"]
    )
    try:
        wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}/cometd"
        reply = post_json(url, [{"channel": "/meta/connect", "clientId": "0" * 40}]).json()[0]
        assert reply["successful"] is False and reply["advice"]["reconnect"] == "retry", reply
    finally:
        stop_process(process)
