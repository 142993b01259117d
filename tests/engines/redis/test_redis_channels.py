"""Channels across a deployment: subscriber counts and listings span every process on one
Redis, follow unsubscribes and ended sessions, and a lazy publish stays lazy through the log."""

from __future__ import annotations

import asyncio
import time

from bayeux import LocalSession

from ...helpers.redis_nodes import Client, node, redis_of, wait_ready


def listing(server_node, channel: str, limit: int = 100):
    return server_node.call(
        lambda: asyncio.ensure_future(
            server_node.endpoint.server.deployment_subscribers(channel, limit)
        )
    )


def counted(server_node, channel: str, limit: int = 100):
    future = listing(server_node, channel, limit)
    deadline = time.monotonic() + 5
    while not future.done():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return future.result()


def test_subscribers_are_counted_across_processes(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        on_a = [Client(a.url) for _ in range(3)]
        on_b = [Client(b.url) for _ in range(2)]
        for c in on_a:
            assert c.subscribe(a.url, "/room")["successful"] is True
        for c in on_b:
            assert c.subscribe(b.url, "/room")["successful"] is True
        everyone = {c.id for c in [*on_a, *on_b]}
        for server_node in (a, b):
            found = counted(server_node, "/room")
            assert found.count == 5 and set(found.client_ids) == everyone
            # Each process's own object counts only its own sessions.
        assert a.call(lambda: a.endpoint.server.channel("/room").subscriber_count) == 3
        limited = counted(a, "/room", limit=2)
        assert limited.count == 5 and len(limited.client_ids) == 2
        # An unsubscribe, a disconnect (handled by the other process) and the counts follow.
        on_a[0].send(a.url, channel="/meta/unsubscribe", subscription="/room")
        (reply,) = on_b[0].send(a.url, channel="/meta/disconnect")
        assert reply["successful"] is True
        deadline = time.monotonic() + 5
        while counted(b, "/room").count != 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert set(counted(b, "/room").client_ids) == everyone - {on_a[0].id, on_b[0].id}
        keys = redis_of(a).keys
        assert keys.members("/room").endswith(":members:/room")


def test_server_side_sessions_count_in_their_own_process(redis_server) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        remote = Client(a.url)
        remote.subscribe(a.url, "/desk")

        async def local() -> LocalSession:
            session = await LocalSession.connect(a.endpoint.server)
            await session.subscribe("/desk", lambda message: None)
            return session

        future = a.call(lambda: asyncio.ensure_future(local()))
        deadline = time.monotonic() + 5
        while not future.done():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        found = counted(a, "/desk")
        assert found.count == 2
        assert set(found.client_ids) == {remote.id, future.result().id}


def test_a_lazy_publish_stays_lazy_through_the_log() -> None:
    from bayeux.core.engine import LoggedMessage
    from bayeux.core.message import Delivery
    from bayeux.engines.redis import log

    for lazy in (True, False):
        delivery = Delivery({"channel": "/news", "data": 1})
        delivery.lazy = lazy
        fields = log.broadcast_fields(delivery, None, "me", False)
        entry = log.decode(b"1-0", {k.encode(): _bytes(v) for k, v in fields.items()}, "me")
        assert isinstance(entry, LoggedMessage)
        assert entry.delivery.lazy is lazy


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def test_decorated_subscriptions_see_every_publish_in_every_process(redis_server) -> None:
    from bayeux import Endpoint, Settings
    from bayeux.engines.redis import RedisEngine
    from bayeux.testing import ServerThread

    from ...helpers.redis_nodes import SETTINGS

    seen: dict[str, list[tuple[str, object]]] = {"a": [], "b": []}

    def make(name: str) -> ServerThread:
        engine = RedisEngine(redis_server.url, "bayeux-test", sync_interval=0.05)
        endpoint = Endpoint(Settings(**SETTINGS), engine=engine)

        @endpoint.server.subscription("/stock/{symbol}")
        def tick(message, symbol):
            seen[name].append((symbol, message["data"]))

        return ServerThread(endpoint=endpoint)

    with make("a") as a, make("b") as b:
        wait_ready(a, b)
        watcher = Client(b.url)
        watcher.subscribe(b.url, "/stock/*")
        publisher = Client(a.url)
        for n in range(3):
            assert publisher.publish(a.url, "/stock/ACME", n)["successful"] is True
        assert publisher.publish(b.url, "/stock/INIT", 9)["successful"] is True
        expected = [("ACME", 0), ("ACME", 1), ("ACME", 2), ("INIT", 9)]
        deadline = time.monotonic() + 5
        while seen["a"] != expected or seen["b"] != expected:
            assert time.monotonic() < deadline, seen
            time.sleep(0.02)
        assert watcher.poll_until([b.url], 4) == [0, 1, 2, 9]
        # The server-side subscribers count in their own process only.
        assert counted(a, "/stock/*").count == 2
