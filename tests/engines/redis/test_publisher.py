"""Publishing from outside the servers (bayeux.publisher, `bayeux publish`) into a deployment of
two processes on a real redis-server: subscribers on both get it, in log order."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from bayeux.publisher import Publisher, SyncPublisher
from bayeux.testing import free_port

from ...helpers.http import post_json
from ...helpers.redis_nodes import Client, node, wait_ready

pytestmark = pytest.mark.redis

PREFIX = "bayeux-test"  # what helpers.redis_nodes.node uses


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bayeux", "publish", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_publishers_outside_reach_subscribers_on_every_process(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        on_a, on_b = Client(a.url), Client(b.url)
        for client, url in ((on_a, a.url), (on_b, b.url)):
            assert client.subscribe(url, "/news")["successful"] is True
            client.connect(url)

        async def from_asyncio() -> int:
            async with Publisher(redis_server.url, PREFIX) as publisher:
                return await publisher.publish("/news", {"n": 1})

        assert asyncio.run(from_asyncio()) > 0
        with SyncPublisher(redis_server.url, PREFIX) as publisher:
            publisher.publish("/news", {"n": 2}, ext={"source": "cron"})
        done = cli("--redis", redis_server.url, "--redis-prefix", PREFIX, "/news", '{"n": 3}')
        assert done.returncode == 0 and int(done.stdout) > 0, done.stderr
        expected = [{"n": 1}, {"n": 2}, {"n": 3}]
        assert on_a.poll_until([a.url], 3) == expected
        assert on_b.poll_until([b.url], 3) == expected


def test_a_message_for_one_client_reaches_it_wherever_it_is_served(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        target, other = Client(a.url), Client(a.url)
        target.connect(a.url)
        other.connect(a.url)
        args = ("--redis", redis_server.url, "--redis-prefix", PREFIX, "--client", target.id)
        assert cli(*args, "/direct", '"for you"').returncode == 0
        assert target.poll_until([a.url, b.url], 1) == ["for you"]
        other.connect(b.url, timeout=0)
        assert other.received == []


def test_what_the_servers_would_refuse_is_refused_before_redis(redis_server) -> None:
    with SyncPublisher(redis_server.url, PREFIX) as publisher:
        for channel in ("/meta/handshake", "/service/x", "no-slash", "/a/*"):
            with pytest.raises(ValueError):
                publisher.publish(channel, 1)
        with pytest.raises(ValueError, match="JSON"):
            publisher.publish("/news", object())
        with pytest.raises(ValueError, match="over"):
            publisher.publish("/news", "x" * 2_000_000)
    bad = cli("--redis", redis_server.url, "/news", "{not json")
    assert bad.returncode == 2 and "data is not JSON" in bad.stderr
    meta = cli("--redis", redis_server.url, "/meta/connect", "1")
    assert meta.returncode == 2 and "cannot publish" in meta.stderr
    away = cli("--redis", f"redis://127.0.0.1:{free_port()}/0", "--timeout", "1", "/news", "1")
    assert away.returncode == 1 and "redis" in away.stderr


def test_replay_channels_get_their_ids_and_shape_from_a_publisher(redis_server) -> None:
    settings = {"replay_channels": ("/event/**",)}
    with node(redis_server.url, **settings) as a, node(redis_server.url, **settings) as b:
        wait_ready(a, b)
        listener = Client(b.url)
        listener.subscribe(b.url, "/event/Order__e")
        listener.connect(b.url)
        with SyncPublisher(redis_server.url, PREFIX) as publisher:
            publisher.publish("/event/Order__e", {"id": 7})
        (event,) = listener.poll_until([b.url], 1)
        assert event["payload"] == {"id": 7} and isinstance(event["event"]["replayId"], int)
        # A client that comes later replays it from either process.
        late = Client(a.url)
        late.connect(a.url)
        subscribe = {
            "channel": "/meta/subscribe",
            "clientId": late.id,
            "subscription": "/event/Order__e",
            "ext": {"replay": {"/event/Order__e": -2}},
        }
        assert post_json(a.url, [subscribe]).json()[0]["successful"] is True
        assert late.poll_until([a.url], 1) == [event]


def test_a_message_for_a_user_reaches_its_sessions_on_both_processes(redis_server) -> None:
    from ...helpers.app_hooks import install_users

    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        for n in (a, b):
            n.call(lambda n=n: install_users(n.endpoint.server))
        sessions = []
        for url in (a.url, b.url):
            hs = {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
                "ext": {"user": "alice"},
            }
            client = Client.__new__(Client)
            client.id = post_json(url, [hs]).json()[0]["clientId"]
            client.ack, client.received = None, []
            client.connect(url)
            sessions.append((client, url))
        args = ("--redis", redis_server.url, "--redis-prefix", PREFIX, "--user", "alice")
        done = cli(*args, "/inbox", '{"n": 1}')
        assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
        with SyncPublisher(redis_server.url, PREFIX) as publisher:
            assert publisher.deliver_to_user("alice", "/inbox", {"n": 2}) == 2
            assert publisher.deliver_to_user("nobody", "/inbox", 1) == 0
            with pytest.raises(ValueError):
                publisher.deliver_to_user("", "/inbox", 1)
        for client, url in sessions:
            assert client.poll_until([url], 2) == [{"n": 1}, {"n": 2}]
