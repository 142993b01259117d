"""Several bayeux processes sharing publishes through a real redis-server (started here on a
free loopback port; ./run-tests installs Debian's redis-server)."""

from __future__ import annotations

import time

from bayeux import Endpoint, Settings
from bayeux.redis_bus import RedisBus
from bayeux.testing import ServerThread, free_port, start_cli, stop_process

from .conftest import handshake, post_json


def node(redis_url: str) -> ServerThread:
    settings = Settings(timeout=3000, max_interval=10000, browser_cookie="")
    return ServerThread(endpoint=Endpoint(settings, bus=RedisBus(redis_url, "bayeux-test")))


def wait_subscribed(*nodes: ServerThread, within: float = 10) -> None:
    deadline = time.monotonic() + within
    for n in nodes:
        while not n.call(n.endpoint.bus.subscribed.is_set):
            assert time.monotonic() < deadline, "redis bus never subscribed"
            time.sleep(0.02)


def subscribe(url: str, client_id: str, channel: str) -> None:
    post_json(url, [{"channel": "/meta/subscribe", "clientId": client_id, "subscription": channel}])
    post_json(
        url, [{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}]
    )


def poll(url: str, client_id: str, want: int, within: float = 5) -> list:
    """Connects until `want` deliveries arrived (or time is up); returns their data."""
    got: list = []
    deadline = time.monotonic() + within
    while len(got) < want and time.monotonic() < deadline:
        reply = post_json(
            url,
            [
                {
                    "channel": "/meta/connect",
                    "clientId": client_id,
                    "connectionType": "long-polling",
                    "advice": {"timeout": 500},
                }
            ],
        ).json()
        got += [m["data"] for m in reply if "data" in m]
    return got


def test_publishes_reach_subscribers_of_other_processes_once_and_in_order(redis_server) -> None:  # type: ignore[no-untyped-def]
    with node(redis_server.url) as a, node(redis_server.url) as b:
        subscriber_a, subscriber_b, publisher = handshake(a.url), handshake(b.url), handshake(b.url)
        wait_subscribed(a, b)
        subscribe(a.url, subscriber_a, "/news/*")
        subscribe(b.url, subscriber_b, "/news/*")
        post_json(
            b.url, [{"channel": "/news/x", "clientId": publisher, "data": i} for i in range(200)]
        )
        assert poll(a.url, subscriber_a, 200) == list(range(200))
        # The publishing process delivers locally once: its own echo from Redis is ignored.
        assert poll(b.url, subscriber_b, 201, within=1.5) == list(range(200))
        # Server-side publishing is shared too.
        a.call(a.endpoint.publish, "/news/y", "from a")
        assert poll(b.url, subscriber_b, 1) == ["from a"]
        assert b.call(lambda: b.endpoint.bus.received) == 1
        assert a.call(lambda: a.endpoint.bus.received) == 200


def test_redis_outage_never_stops_local_delivery_and_the_relay_recovers(redis_server) -> None:  # type: ignore[no-untyped-def]
    with node(redis_server.url) as a, node(redis_server.url) as b:
        local, remote, publisher = handshake(a.url), handshake(b.url), handshake(a.url)
        wait_subscribed(a, b)
        subscribe(a.url, local, "/alerts")
        subscribe(b.url, remote, "/alerts")
        redis_server.stop()
        started = time.monotonic()
        reply = post_json(
            a.url, [{"channel": "/alerts", "clientId": publisher, "data": "during outage"}]
        )
        assert reply.json()[0]["successful"] is True
        assert time.monotonic() - started < 1.0  # no waiting on Redis
        assert poll(a.url, local, 1) == ["during outage"]
        redis_server.start()  # same port: both processes reconnect by themselves
        wait_subscribed(a, b, within=15)
        # What was published during the outage waited in the outbox and is relayed now.
        assert poll(b.url, remote, 1, within=10) == ["during outage"]
        post_json(a.url, [{"channel": "/alerts", "clientId": publisher, "data": "after"}])
        assert poll(b.url, remote, 1, within=10) == ["after"]
        assert a.call(lambda: a.endpoint.bus.dropped) == 0


def test_bus_starts_while_redis_is_down_without_blocking() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with node(url) as a:
        client_id = handshake(a.url)
        subscribe(a.url, client_id, "/local")
        post_json(a.url, [{"channel": "/local", "clientId": client_id, "data": 1}])
        assert poll(a.url, client_id, 1) == [1]
        assert not a.call(a.endpoint.bus.subscribed.is_set)


def test_two_cli_processes_share_through_redis(redis_server) -> None:  # type: ignore[no-untyped-def]
    processes, urls = [], []
    try:
        for _ in range(2):
            process, url = start_cli("--redis", redis_server.url, "--redis-channel", "cli-test")
            processes.append(process)
            urls.append(url)
        subscriber, publisher = handshake(urls[0]), handshake(urls[1])
        subscribe(urls[0], subscriber, "/shared")
        got: list = []
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:  # until both buses are subscribed
            post_json(urls[1], [{"channel": "/shared", "clientId": publisher, "data": "hello"}])
            got = poll(urls[0], subscriber, 1, within=0.5)
        assert got and set(got) == {"hello"}
    finally:
        for process in processes:
            assert stop_process(process) == 0


def test_the_outbox_is_bounded_in_bytes_while_redis_is_away() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings(timeout=2000, max_interval=3000, sweep_period=100)
    bus = RedisBus(url, "bayeux-test", outbox_bytes=16 * 1024)
    with ServerThread(endpoint=Endpoint(settings, bus=bus)) as a:
        for i in range(100):
            a.call(a.endpoint.publish, "/x", {"i": i, "p": "y" * 1000})
        assert 8 * 1024 < a.call(bus.outbox_size) <= 16 * 1024
        assert a.call(lambda: bus.dropped) > 80


def test_the_relay_survives_an_unexpected_error(redis_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import redis.asyncio.client

    real_execute = redis.asyncio.client.Pipeline.execute
    failures = []

    async def fails_once(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(1)
            raise RuntimeError("an unexpected bug")
        return await real_execute(self, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", fails_once)
    with node(redis_server.url) as a, node(redis_server.url) as b:
        remote = handshake(b.url)
        wait_subscribed(a, b)
        subscribe(b.url, remote, "/r")
        a.call(a.endpoint.publish, "/r", "first")
        assert poll(b.url, remote, 1, within=10) == ["first"]  # retried after the failure
        assert failures == [1]
