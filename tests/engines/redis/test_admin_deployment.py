"""The admin page and /metrics of a deployment on Redis: whichever process answers, the page
shows every process (its sessions, which process serves each, the channels' subscribers across
all), disconnects a session another process serves, and still answers for itself when Redis is
away; under --workers each scrape of /metrics holds every worker's figures, which add up to the
deployment's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

import pytest

from bayeux.testing import child_pids, free_port, stop_process, wait_for_port

from ...helpers.admin import LOAD_OPTIONS, TOKEN, Swarm, api, until
from ...helpers.metrics import scrape
from ...helpers.redis_nodes import OPTIONS, serve, wait_healthy

pytestmark = pytest.mark.redis

ADMIN = ("--admin-path", "/admin", "--admin-token", TOKEN, *LOAD_OPTIONS)


def admin_of(url: str) -> str:
    return url.replace("/cometd", "/admin")


def test_every_process_answers_for_its_sessions(redis_server) -> None:
    (a, url_a), (b, url_b) = serve(redis_server.url, *ADMIN), serve(redis_server.url, *ADMIN)
    try:
        with (
            Swarm(url_a, 5, subscribed=5, channel="/room") as on_a,
            Swarm(url_b, 3, subscribed=2, channel="/room") as on_b,
        ):
            for url in (url_a, url_b):
                overview = until(
                    lambda url=url: _when(admin_of(url), "overview", lambda o: o["sessions"] == 8)
                )
                assert overview["engine"] == "redis"
                assert overview["deployment"] == {"asked": 2, "answered": 2, "reached": True}
                assert sorted(p["sessions"] for p in overview["processes"]) == [3, 5]
                assert overview["transports"] == {"websocket": 8}
            names = {p["sessions"]: p["name"] for p in overview["processes"]}
            # Which process serves each session, listed from the other one.
            rows = api(admin_of(url_b), "sessions", "limit=100").json()["sessions"]
            served_by = {row["clientId"]: row["process"] for row in rows}
            assert {served_by[c] for c in on_a.client_ids} == {names[5]}
            assert {served_by[c] for c in on_b.client_ids} == {names[3]}
            # Counted across the deployment, whichever process lists the channel.
            channels = api(admin_of(url_b), "channels").json()["channels"]
            assert {"channel": "/room", "subscribers": 7, "rate": 0.0} in channels
            # B ends a session A serves: A's client is told to stop.
            victim = on_a.client_ids[2]
            answer = api(admin_of(url_b), "disconnect", body={"clientId": victim})
            assert answer.status == 200, answer.body
            until(lambda: on_a.stopped(victim))
            assert sum(on_a.stopped(c) for c in on_a.client_ids) == 1
            assert api(admin_of(url_b), "disconnect", body={"clientId": "0" * 40}).status == 404
            # Redis away: each process still answers, for itself, and says so.
            redis_server.stop()
            alone = until(
                lambda: _when(admin_of(url_a), "overview", lambda o: not o["deployment"]["reached"])
            )
            assert alone["processes"][0]["name"] == names[5]
            assert alone["sessions"] == 4
    finally:
        stop_process(a)
        stop_process(b)


def test_junk_on_the_admin_channels_changes_nothing(redis_server) -> None:
    import redis

    process, url = serve(redis_server.url, *ADMIN)
    try:
        overview = until(lambda: _when(admin_of(url), "overview", lambda o: o["processes"]))
        me = overview["processes"][0]["id"]
        junk = [
            b"not json",
            b"[]",
            b"{}",
            b'{"id": 1}',
            b'{"id": "x", "from": "y", "kind": 5}',
            b'{"id": "x", "from": "y", "kind": "sessions", "params": {"limit": "1000"}}',
            b'{"id": "x", "from": "y", "kind": "nothing", "params": {}}',
            b'{"id": "x", "process": "p", "answer": {"rows": []}}',
            b"{" * 100_000,
            b'{"id": "x", "from": "' + b"y" * 1000 + b'", "kind": "overview", "params": {}}',
        ]
        with redis.Redis.from_url(redis_server.url) as direct:
            for payload in junk:
                for channel in ("bayeux:admin:ask", f"bayeux:admin:reply:{me}"):
                    direct.publish(channel, payload)
        answer = api(admin_of(url), "overview").json()
        assert answer["deployment"] == {"asked": 1, "answered": 1, "reached": True}
        assert process.poll() is None
    finally:
        assert stop_process(process) == 0


def _when(admin: str, name: str, test) -> dict | None:
    answer = api(admin, name)
    assert answer.status == 200, answer.body
    value = answer.json()
    return value if test(value) else None


def test_workers_metrics_add_up_and_the_page_shows_every_worker(redis_server) -> None:
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "warning"]
        + ["--redis", redis_server.url, "--workers", "2", "--metrics-path", "/metrics"]
        + ["--admin-path", "/admin", *LOAD_OPTIONS, *OPTIONS],
        env={**os.environ, "BAYEUX_ADMIN_TOKEN": TOKEN},
    )
    try:
        wait_for_port(port, parent)
        url = f"http://127.0.0.1:{port}/cometd"
        wait_healthy(url)
        workers = child_pids(parent.pid)
        assert len(workers) == 2
        # Both workers serve the port before the clients come (else one may get them all).
        until(lambda: _when(admin_of(url), "overview", lambda o: o["deployment"]["answered"] == 2))
        clients, subscribed, messages = 20, 8, 30
        with Swarm(url, clients, subscribed=subscribed, channel="/feed") as swarm:
            overview = until(
                lambda: _when(admin_of(url), "overview", lambda o: o["sessions"] == 20)
            )
            assert overview["deployment"]["answered"] == 2
            assert {p["pid"] for p in overview["processes"]} == set(workers)
            for n in range(messages):
                answer = api(admin_of(url), "publish", body={"channel": "/feed", "data": n})
                assert answer.status == 200
            until(lambda: swarm.received["/feed"] == messages * subscribed)
            # Each scrape reaches one worker (a new connection each); each holds both.
            for _ in range(8):
                figures = scrape(f"http://127.0.0.1:{port}/metrics")
                assert figures[("bayeux_workers", ())] == 2
                assert figures[("bayeux_workers_asked", ())] == 2
                assert set(_by_worker(figures, "bayeux_connections")) == {str(p) for p in workers}
                sessions = _by_worker(figures, "bayeux_sessions")
                assert len(sessions) == 2 and sum(sessions.values()) == clients
                deliveries = _by_worker(figures, "bayeux_deliveries_total")
                assert sum(deliveries.values()) == messages * subscribed
    finally:
        assert stop_process(parent) == 0


def _by_worker(figures: dict, name: str) -> dict[str, float]:
    """The figure `name` summed over its other labels, by worker."""
    summed: dict[str, float] = defaultdict(float)
    for (sample, labels), value in figures.items():
        if sample == name:
            summed[dict(labels)["worker"]] += value
    return summed
