"""Any process serves any session: several bayeux processes on one real redis-server (started
here on a free loopback port; ./run-tests installs Debian's redis-server)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import trustme

from bayeux import Endpoint, Settings
from bayeux.core.engine import position_of
from bayeux.engines.redis import RedisEngine
from bayeux.testing import ServerThread, free_port

from ...helpers.http import post_json, request
from ...helpers.rawws import RawWebSocket
from ...helpers.redis_nodes import SETTINGS, Client, node, redis_of, wait_ready
from ...helpers.redisproc import RedisServer, Sentinel
from ...helpers.servers import handshake_message

pytestmark = pytest.mark.redis


def assert_two_processes_deliver(redis_url: str, text: str) -> None:
    """Two processes on `redis_url`: a client made on one, subscribed and served on the other,
    gets what a third client publishes there."""
    with node(redis_url) as a, node(redis_url) as b:
        wait_ready(a, b)
        client = Client(a.url)
        client.subscribe(b.url, "/feed")
        Client(b.url).publish(b.url, "/feed", text)
        assert client.poll_until([b.url], 1) == [text]


def test_a_session_made_on_one_process_is_served_by_another(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        client = Client(a.url)
        # Before: 402::Unknown client on any process but the one that made it.
        assert client.connect(b.url)["successful"] is True
        assert client.subscribe(a.url, "/news/*")["successful"] is True
        publisher = Client(b.url)
        for i in range(20):
            assert publisher.publish([a.url, b.url][i % 2], "/news/x", i)["successful"] is True
        assert client.poll_until([a.url, b.url], 20) == list(range(20))


def test_a_session_taken_over_is_counted_against_its_clients_address(redis_server) -> None:
    """The per-address memory budget follows a session to the process that takes it over."""
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        client = Client(a.url)
        assert client.subscribe(a.url, "/addr/x")["successful"] is True
        assert client.connect(b.url)["successful"] is True  # b serves it now

        def counted() -> tuple[str, int, int]:
            session = b.endpoint.server.sessions[client.id]
            budget = b.endpoint.server.budgets.of("127.0.0.1")
            return session.budget.key, budget.sessions, session.subscription_bytes

        key, sessions, subscribed = b.call(counted)
        assert key == "127.0.0.1" and sessions == 1 and subscribed > 0


def test_round_robin_requests_lose_nothing_and_repeat_nothing(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        urls = [a.url, b.url]
        client = Client(a.url)
        client.connect(b.url)
        client.subscribe(b.url, "/feed")
        publisher = Client(b.url)
        published = 0

        def publish_all() -> None:
            nonlocal published
            for i in range(200):
                publisher.publish(urls[i % 2], "/feed", i)
                published += 1
                time.sleep(0.002)

        thread = threading.Thread(target=publish_all)
        thread.start()
        client.poll_until(urls, 200, within=30)
        thread.join()
        assert client.received == list(range(200))
        handoffs = a.call(lambda: redis_of(a).handoffs) + b.call(lambda: redis_of(b).handoffs)
        assert handoffs > 10  # every connect moved the session: the hard case, not a lucky one


def test_round_robin_with_the_ack_extension_is_exact(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        urls = [a.url, b.url]
        client = Client(a.url, ack=True)
        client.subscribe(a.url, "/feed")
        client.connect(a.url)
        publisher = Client(b.url)

        def publish_all() -> None:
            for i in range(150):
                publisher.publish(urls[i % 2], "/feed", i)
                time.sleep(0.003)

        thread = threading.Thread(target=publish_all)
        thread.start()
        client.poll_until(urls, 150, within=30)
        thread.join()
        client.connect(a.url)
        client.connect(b.url)
        # Every batch acknowledged to the process that takes the session next: nothing is
        # sent again, nothing lost, in order.
        assert client.received == list(range(150))


def test_a_held_connect_is_answered_when_another_process_takes_the_session(redis_server) -> None:
    with node(redis_server.url, timeout=10000) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        client = Client(a.url)
        client.subscribe(a.url, "/feed")
        client.connect(a.url)  # the first connect is answered at once
        held: dict = {}
        thread = threading.Thread(target=lambda: held.update(client.connect(a.url, None)))
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        reply = client.connect(b.url, 100)
        thread.join(5)
        assert not thread.is_alive() and time.monotonic() - started < 3
        assert held["successful"] is True and held["advice"]["reconnect"] == "retry"
        assert reply["successful"] is True
        assert a.call(lambda: client.id in a.endpoint.server.sessions) is False
        assert b.call(lambda: client.id in b.endpoint.server.sessions) is True


def test_what_was_queued_in_the_old_process_is_delivered_by_the_new_one(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        client = Client(a.url)
        client.subscribe(a.url, "/feed")
        client.connect(a.url)
        publisher = Client(a.url)
        for i in range(5):
            publisher.publish(a.url, "/feed", i)
        time.sleep(0.3)
        assert a.call(lambda: len(a.endpoint.server.sessions[client.id].queue)) == 5
        assert client.poll_until([b.url], 5) == [0, 1, 2, 3, 4]
        client.connect(b.url)
        assert client.received == [0, 1, 2, 3, 4]


def test_two_processes_claiming_one_session_at_once_leave_one_owner(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b, node(redis_server.url) as c:
        wait_ready(a, b, c)
        client = Client(c.url)
        client.subscribe(c.url, "/feed")
        replies: list = []
        threads = [
            threading.Thread(target=lambda u=u: replies.append(client.connect(u, 200)))
            for u in (a.url, b.url)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert all(r["successful"] for r in replies)
        owners = [
            n for n in (a, b, c) if n.call(lambda n=n: client.id in n.endpoint.server.sessions)
        ]
        assert len(owners) == 1
        Client(c.url).publish(c.url, "/feed", "once")
        assert client.poll_until([owners[0].url], 1) == ["once"]
        client.connect(owners[0].url)
        assert client.received == ["once"]


@pytest.mark.parametrize("transport", ["subscribe", "publish", "disconnect"])
def test_other_requests_use_the_session_where_it_is(redis_server, transport) -> None:
    with (
        node(redis_server.url, broadcast_to_publisher=False) as a,
        node(redis_server.url, broadcast_to_publisher=False) as b,
    ):
        wait_ready(a, b)
        client = Client(a.url)
        client.connect(a.url)
        if transport == "subscribe":
            assert client.subscribe(b.url, "/feed")["successful"] is True
            Client(b.url).publish(b.url, "/feed", "here")
            assert client.poll_until([a.url], 1) == ["here"]
        elif transport == "publish":
            client.subscribe(a.url, "/feed")
            other = Client(a.url)
            other.subscribe(a.url, "/feed")
            other.connect(a.url)
            assert client.publish(b.url, "/feed", "mine")["successful"] is True
            # broadcast_to_publisher=False holds across processes: the publisher is excluded.
            assert other.poll_until([a.url], 1) == ["mine"]
            client.connect(a.url, 100)
            assert client.received == []
        else:
            (reply,) = client.send(b.url, channel="/meta/disconnect")
            assert reply["successful"] is True
            deadline = time.monotonic() + 5
            while a.call(lambda: client.id in a.endpoint.server.sessions):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert client.connect(a.url)["error"].startswith("402")
        # The session stayed where it was: nothing moved it.
        assert b.call(lambda: client.id in b.endpoint.server.sessions) is False


def test_a_service_reply_reaches_a_session_served_elsewhere(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        b.call(lambda: b.endpoint.server.add_service("/service/echo", lambda r: r.message["data"]))
        client = Client(a.url)
        client.connect(a.url)
        (reply,) = client.send(b.url, channel="/service/echo", data={"hi": 1})
        assert reply["successful"] is True
        assert client.poll_until([a.url], 1) == [{"hi": 1}]


def test_an_unknown_client_is_still_unknown_everywhere(redis_server) -> None:
    with node(redis_server.url) as a:
        wait_ready(a)
        for client_id in ("0" * 40, "not-an-id"):
            (reply,) = post_json(
                a.url,
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": client_id,
                        "connectionType": "long-polling",
                    }
                ],
            ).json()
            assert reply["error"].startswith("402")


def test_a_session_nobody_serves_expires_after_max_interval(redis_server) -> None:
    import redis

    with node(redis_server.url) as b:
        wait_ready(b)
        with node(redis_server.url) as a:
            wait_ready(a)
            client = Client(a.url)
            client.subscribe(a.url, "/feed")
            # Stops without leaving its sessions, as a crash would: its alive key lapses.
            a.call(lambda: redis_of(a)._tasks[2].cancel())
        store: Any = redis.Redis.from_url(redis_server.url)  # replies are bytes
        assert store.exists(f"bayeux-test:session:{client.id}")
        deadline = time.monotonic() + 15
        while store.exists(f"bayeux-test:session:{client.id}"):
            assert time.monotonic() < deadline, "the orphaned session never expired"
            time.sleep(0.1)
        assert not store.exists(f"bayeux-test:subs:{client.id}")
        assert client.connect(b.url)["error"].startswith("402")


def test_a_request_that_needs_redis_gets_retry_advice_while_it_is_away(redis_server) -> None:
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        local = Client(a.url)
        local.subscribe(a.url, "/feed")
        local.connect(a.url)
        elsewhere = Client(b.url)
        redis_server.stop()
        # The session elsewhere cannot be taken: a Bayeux error with retry advice, no 500.
        reply = elsewhere.connect(a.url)
        assert reply["successful"] is False and reply["error"].startswith("503")
        assert reply["advice"]["reconnect"] == "retry"
        # Local delivery goes on.
        assert Client(a.url).publish(a.url, "/feed", "still")["successful"] is True
        assert local.poll_until([a.url], 1) == ["still"]
        # Redis back (empty: it lost everything): the records are written again, handoffs work.
        redis_server.start()
        wait_ready(a, b, within=15)
        time.sleep(0.3)
        assert local.connect(b.url)["successful"] is True
        Client(b.url).publish(b.url, "/feed", "after")
        local.poll_until([b.url], 2)
        assert local.received == ["still", "after"]


def test_the_outbox_is_bounded_in_bytes_while_redis_is_away() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    engine = RedisEngine(url, "bayeux-test", outbox_bytes=16 * 1024)
    with ServerThread(endpoint=Endpoint(Settings(**SETTINGS), engine=engine)) as a:
        for i in range(100):
            a.call(lambda i=i: a.endpoint.publish("/x", {"n": i, "pad": "x" * 400}))
        assert 8 * 1024 < a.call(engine.outbox_size) <= 16 * 1024
        assert a.call(lambda: engine.dropped) > 50


def test_what_was_published_while_redis_was_away_reaches_the_others_later(
    redis_server,
) -> None:
    # `there` does not poll while Redis is away: its session must outlive the outage.
    with (
        node(redis_server.url, max_interval=30_000) as a,
        node(redis_server.url, max_interval=30_000) as b,
    ):
        wait_ready(a, b)
        here, there = Client(a.url), Client(b.url)
        for client, n in ((here, a), (there, b)):
            client.subscribe(n.url, "/feed")
            client.connect(n.url)
        redis_server.stop()
        assert Client(a.url).publish(a.url, "/feed", json.dumps("away"))["successful"] is True
        assert here.poll_until([a.url], 1) == ['"away"']
        redis_server.start()
        wait_ready(a, b, within=15)
        assert there.poll_until([b.url], 1) == ['"away"']
        here.connect(a.url, 300)
        assert here.received == ['"away"']  # not twice where it was published


@pytest.fixture(params=["standalone", "embedded"])
def two_nodes(request, redis_server):
    """Two processes' worth of endpoints on one Redis, on either connection layer."""
    ServerThread.embedded_by_default = request.param == "embedded"
    try:
        with node(redis_server.url) as a, node(redis_server.url) as b:
            wait_ready(a, b)
            yield a, b
    finally:
        ServerThread.embedded_by_default = False


def test_websocket_sessions_move_when_the_client_reconnects_elsewhere(two_nodes) -> None:
    a, b = two_nodes
    socket_a = RawWebSocket(a.url)
    socket_a.send([{"channel": "/meta/handshake", "version": "1.0",
                    "supportedConnectionTypes": ["websocket"]}])  # fmt: skip
    (reply,) = socket_a.read()
    client_id = reply["clientId"]
    socket_a.send([{"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/feed"}])
    assert socket_a.read()[0]["successful"] is True
    socket_a.close()  # the connection drops; the session lives on
    publisher = Client(b.url)
    for i in range(3):
        publisher.publish(b.url, "/feed", i)
    socket_b = RawWebSocket(b.url)
    socket_b.send([{"channel": "/meta/connect", "clientId": client_id,
                    "connectionType": "websocket"}])  # fmt: skip
    got: list = []
    while not any(m["channel"] == "/meta/connect" for m in got):
        got += socket_b.read()
    assert [m["data"] for m in got if "data" in m] == [0, 1, 2]
    assert next(m for m in got if m["channel"] == "/meta/connect")["successful"] is True
    socket_b.close()


def test_callback_polling_requests_may_reach_any_process(two_nodes) -> None:
    a, b = two_nodes

    def jsonp(url: str, message: dict) -> list:
        query = urlencode({"message": json.dumps([message]), "jsonp": "cb"})
        body = request(f"{url}?{query}", method="GET", timeout=10).body.decode()
        assert body.startswith("cb(") or body.startswith("/**/cb("), body
        return json.loads(body[body.index("(") + 1 : body.rindex(")")])

    (reply,) = jsonp(a.url, {"channel": "/meta/handshake", "version": "1.0",
                             "supportedConnectionTypes": ["callback-polling"]})  # fmt: skip
    client_id = reply["clientId"]
    connect = {"channel": "/meta/connect", "clientId": client_id,
               "connectionType": "callback-polling", "advice": {"timeout": 300}}  # fmt: skip
    assert jsonp(b.url, connect)[0]["successful"] is True
    subscribe = {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/feed"}
    assert jsonp(a.url, subscribe)[0]["successful"] is True
    Client(b.url).publish(b.url, "/feed", "jsonp")
    got: list = []
    for url in (a.url, b.url, a.url):
        got += [m["data"] for m in jsonp(url, connect) if "data" in m]
    assert got == ["jsonp"]


def test_an_event_stream_opened_on_another_process_takes_the_session(two_nodes) -> None:
    a, b = two_nodes
    client = Client(a.url)
    client.subscribe(a.url, "/feed")
    client.connect(a.url)
    Client(a.url).publish(a.url, "/feed", "queued in a")
    time.sleep(0.2)
    parts = urlsplit(b.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", f"{parts.path}/{client.id}", headers={"Accept": "text/event-stream"})
    response = conn.getresponse()
    assert response.status == 200

    def next_event() -> list:
        while True:
            line = response.readline().decode()
            assert line, "stream ended"
            if line.startswith("data: "):
                return json.loads(line[len("data: ") :])

    assert [m["data"] for m in next_event()] == ["queued in a"]
    # Connects (Faye sends them by long-polling POST) may go anywhere: they do not move it.
    eventsource_connect = {"channel": "/meta/connect", "connectionType": "eventsource"}
    assert client.send(a.url, **eventsource_connect)[0]["successful"] is True
    Client(a.url).publish(a.url, "/feed", "live")
    assert [m["data"] for m in next_event()] == ["live"]
    assert b.call(lambda: client.id in b.endpoint.server.sessions) is True
    conn.close()


def test_a_deployment_on_redis_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1")
    files = (tmp_path / "redis.pem", tmp_path / "redis.key", tmp_path / "ca.pem")
    certificate.cert_chain_pems[0].write_to_path(str(files[0]))
    certificate.private_key_pem.write_to_path(str(files[1]))
    ca.cert_pem.write_to_path(str(files[2]))
    redis_server = RedisServer(tls=files)
    redis_server.start()
    try:
        assert redis_server.url.startswith("rediss://")
        assert_two_processes_deliver(redis_server.url, "over tls")
    finally:
        redis_server.stop()


def test_a_deployment_through_redis_sentinel(tmp_path: Path) -> None:
    primary = RedisServer()
    primary.start()
    sentinel = Sentinel(primary, tmp_path)
    sentinel.start()
    try:
        assert_two_processes_deliver(sentinel.url, "through sentinel")
        import redis

        # The data went to the primary the Sentinel named.
        assert redis.Redis(port=primary.port).exists("bayeux-test:log")
    finally:
        sentinel.stop()
        primary.stop()


def test_a_drained_process_leaves_every_session_to_the_others_at_once(redis_server) -> None:
    import redis

    with node(redis_server.url) as b:
        wait_ready(b)
        with node(redis_server.url) as a:
            wait_ready(a)
            clients = [Client(a.url) for _ in range(30)]
            for client in clients:
                client.subscribe(a.url, "/feed")
                client.connect(a.url)
            Client(a.url).publish(a.url, "/feed", "left")  # queued in a for each of them
            time.sleep(0.2)
        # a drained on leaving the block: every record left, with its exact position.
        store: Any = redis.Redis.from_url(redis_server.url)  # replies are bytes
        owners = {store.hget(f"bayeux-test:session:{c.id}", "owner") for c in clients}
        assert owners == {b""}
        started = time.monotonic()
        for client in clients:
            assert client.poll_until([b.url], 1) == ["left"]
        # Taken at once: nobody waited for a's liveness key to lapse.
        assert time.monotonic() - started < 5
        assert b.call(lambda: redis_of(b).handoffs) == 0


def test_a_running_process_keeps_its_sessions_past_its_alive_keys_expiry(redis_server) -> None:
    # The periodic save renews the process's `alive` key in the same script: a process that
    # serves, with and without changes to save, is never taken for dead, and its sessions
    # never become orphans.
    import redis

    store: Any = redis.Redis.from_url(redis_server.url)  # replies are bytes
    # The client goes quiet for longer than alive's expiry: its session must outlive that.
    with (
        node(redis_server.url, max_interval=30_000) as a,
        node(redis_server.url, max_interval=30_000) as b,
    ):
        wait_ready(a, b)
        engine = redis_of(a)
        client = Client(a.url)
        client.subscribe(a.url, "/feed")
        publisher = Client(b.url)
        started = time.monotonic()
        while time.monotonic() - started < 2 * engine._alive_ms / 1000:
            publisher.publish(b.url, "/feed", "tick")  # the floor moves: a save each tick
            client.connect(a.url)
            assert store.exists(engine.keys.alive(engine.me)) == 1
            time.sleep(0.2)
        time.sleep(1.5 * engine._alive_ms / 1000)  # idle: nothing changes to save
        assert store.exists(engine.keys.alive(engine.me)) == 1
        assert store.hget(f"bayeux-test:session:{client.id}", "owner") == engine.me.encode()
        assert store.zscore("bayeux-test:orphans", client.id) is None


def test_a_session_that_left_its_process_stops_following_its_floor(redis_server) -> None:
    # A caught-up session's record follows its process's floor. When the session leaves the
    # process without the record changing (its end lost while Redis was away, say), the
    # floor moves on without it: the record is pinned to the floor it had, and a message
    # published after it left reaches it through the next process that takes it over.
    import redis

    store: Any = redis.Redis.from_url(redis_server.url)  # replies are bytes
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        client = Client(a.url)
        client.subscribe(a.url, "/feed")
        client.connect(a.url)
        key = f"bayeux-test:session:{client.id}"
        deadline = time.monotonic() + 5
        while store.hget(key, "follows") != b"1":
            assert time.monotonic() < deadline, "the caught-up session was never saved as following"
            time.sleep(0.02)
        a.call(lambda: a.endpoint.server.let_go(client.id))  # gone from a; Redis not told
        assert Client(b.url).publish(b.url, "/feed", "after")["successful"] is True
        engine = redis_of(a)
        floor_key = engine.keys.floor(engine.me)
        newest = position_of(store.xrevrange("bayeux-test:log", count=1)[0][0].decode())
        while int(store.get(floor_key) or 0) < newest:
            assert time.monotonic() < deadline, "a's floor never passed the message"
            time.sleep(0.02)
        assert store.hget(key, "follows") == b"0"
        assert int(store.hget(key, "pos")) < newest
        assert client.poll_until([b.url], 1) == ["after"]


def test_a_sentinel_failover_is_followed(tmp_path: Path) -> None:
    import redis

    primary = RedisServer()
    primary.start()
    replica = RedisServer("--replicaof", "127.0.0.1", str(primary.port))
    replica.start()
    sentinel = Sentinel(primary, tmp_path)
    sentinel.start()
    try:
        deadline = time.monotonic() + 15
        while redis.Redis(port=replica.port).info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.1)
        # The client does not poll while the Sentinel fails over (a few seconds): its
        # session must outlive that, or it expires (402) whatever the engine does.
        with (
            node(sentinel.url, max_interval=30_000) as a,
            node(sentinel.url, max_interval=30_000) as b,
        ):
            wait_ready(a, b)
            client = Client(a.url)
            client.subscribe(a.url, "/feed")
            client.connect(a.url)
            time.sleep(0.5)  # replicated
            primary.stop()  # the Sentinel promotes the replica
            deadline = time.monotonic() + 40
            while redis.Redis(port=replica.port).info("replication")["role"] != "master":
                assert time.monotonic() < deadline, "the Sentinel never promoted the replica"
                time.sleep(0.2)
            wait_ready(a, b, within=30)
            # Publishes, handoffs and deliveries go on through the new primary.
            deadline = time.monotonic() + 20
            while (
                Client(b.url).publish(b.url, "/feed", "after failover").get("successful")
                is not True
            ):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert client.poll_until([b.url], 1) == ["after failover"]
    finally:
        sentinel.stop()
        replica.stop()
        primary.stop()


def test_commands_redis_refuses_get_retry_advice_not_internal_errors(caplog) -> None:
    # A Redis that refuses scripts (as an ACL or a managed service might): the engine says so
    # in its log, and clients get 503 with retry advice.
    import redis

    refusing = RedisServer("--rename-command", "EVALSHA", "", "--rename-command", "EVAL", "")
    refusing.start()
    try:
        with node(refusing.url) as a, node(refusing.url) as b:
            wait_ready(a, b)
            client = Client(a.url)  # served by a; b cannot claim it without scripts
            (reply,) = post_json(
                b.url,
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": client.id,
                        "connectionType": "long-polling",
                    }
                ],
            ).json()
            assert reply["successful"] is False
            assert reply["error"].startswith("503"), reply
            assert reply["advice"]["reconnect"] == "retry"
            assert "redis refused a command of the engine" in caplog.text
            # Its saves refused, a still says it is alive: nobody takes its sessions for a
            # dead process's.
            engine = redis_of(a)
            time.sleep(1.5 * engine._alive_ms / 1000)
            assert redis.Redis.from_url(refusing.url).exists(engine.keys.alive(engine.me)) == 1
    finally:
        refusing.stop()


def test_the_engine_is_in_the_metrics(redis_server) -> None:
    from ...helpers.metrics import scrape

    endpoints = [
        Endpoint(
            Settings(**SETTINGS),
            engine=RedisEngine(redis_server.url, "bayeux-test", sync_interval=0.05),
        )
        for _ in range(2)
    ]
    threads = [
        ServerThread(endpoint=e, extra_routes=[e.metrics_route("/metrics")]) for e in endpoints
    ]
    with threads[0] as a, threads[1] as b:
        wait_ready(a, b)
        client = Client(a.url)
        client.subscribe(a.url, "/feed")
        client.connect(a.url)
        Client(b.url).publish(b.url, "/feed", 1)
        assert client.poll_until([b.url], 1) == [1]  # the session moved to b
        m_a, m_b = scrape(a.origin + "/metrics"), scrape(b.origin + "/metrics")
        assert m_a[("bayeux_engine_appended_total", ())] == 1  # the subscribe
        assert m_b[("bayeux_engine_appended_total", ())] == 1  # the publish
        assert m_a[("bayeux_engine_applied_total", ())] >= 2
        assert m_b[("bayeux_engine_claims_total", ())] == 1
        assert m_b[("bayeux_engine_handoffs_total", ())] == 1
        assert m_b[("bayeux_engine_connected", ())] == 1
        assert m_a[("bayeux_engine_outbox_bytes", ())] == 0
        assert 0 <= m_a[("bayeux_engine_read_lag_seconds", ())] < 5


def test_the_periodic_save_keeps_a_caught_up_session_whatever_its_position() -> None:
    # What lets a save skip the records of subscribers that keep up: their saved state does
    # not move with their position (the floor carries it); a queue or ack makes it explicit.
    from bayeux.core.ack import AckState
    from bayeux.core.message import Delivery
    from bayeux.core.session import ServerSession
    from bayeux.engines.redis.records import saved_state

    early, late = ServerSession("a" * 40, 0), ServerSession("b" * 40, 0)
    early.position = early.written = 1 << 30
    late.position = late.written = 5 << 30
    assert saved_state(early) == saved_state(late)
    assert saved_state(early).follows_floor == 1
    late.enqueue(Delivery({"channel": "/feed", "data": 1}))
    assert saved_state(late) == (5 << 30, 0, "{}", 0, 0)  # behind: its own position
    acked = ServerSession("c" * 40, 0)
    acked.ack = AckState(0, 3 << 30)
    assert saved_state(acked).position == 3 << 30 and saved_state(acked).follows_floor == 0


def test_broadcasts_reach_the_log_in_the_order_they_were_published(redis_server) -> None:
    # A publish batch may hand its messages to the engine over several loop turns. The log
    # must keep them in that order even while its Redis connections are still being opened
    # (a fresh process), or subscribers served elsewhere get them swapped.
    import asyncio

    import redis.asyncio

    from bayeux.core.message import Delivery
    from bayeux.core.server import BayeuxServer

    async def main() -> list[int]:
        engine = RedisEngine(redis_server.url, "bayeux-order", sync_interval=0.05)
        await engine.start(BayeuxServer(Settings(**SETTINGS)))
        for _ in range(500):
            if engine.available and engine.ready.is_set():
                break
            await asyncio.sleep(0.01)
        appended = []
        for i in range(50):
            appended.append(engine.append(Delivery({"channel": "/feed", "data": i}), None))
            await asyncio.sleep(0)
        assert all(await asyncio.gather(*appended))
        reader: Any = redis.asyncio.Redis.from_url(redis_server.url)
        items = await reader.xrange("bayeux-order:log")
        await reader.aclose()
        await engine.stop()
        return [json.loads(fields[b"m"])["data"] for _, fields in items]

    assert asyncio.run(main()) == list(range(50))


def test_a_sessions_own_timing_follows_it_to_another_process(redis_server) -> None:
    """Set on the process that made the session, advised and used by the one serving it next
    (written to the record at once, whether the session was made there or taken over)."""
    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        client = Client(a.url)
        session = a.call(lambda: a.endpoint.server.sessions[client.id])
        a.call(
            lambda: a.endpoint.server.set_timing(
                session, timeout=700, interval=10, max_interval=4000
            )
        )
        import redis

        store: Any = redis.Redis.from_url(redis_server.url)
        deadline = time.monotonic() + 5
        while store.hget(f"bayeux-test:session:{client.id}", "timing") != b"700,10,4000,":
            assert time.monotonic() < deadline, "the session's timing never reached its record"
            time.sleep(0.02)
        reply = client.connect(b.url, timeout=None)  # taken over by b
        assert reply["advice"]["timeout"] == 700 and reply["advice"]["maxInterval"] == 4000
        taken = b.call(lambda: b.endpoint.server.sessions[client.id])
        assert (taken.timeout, taken.interval, taken.max_interval) == (700, 10, 4000)
        # The hold on b lasts the session's timeout, not the server's (1500 ms).
        started = time.monotonic()
        client.connect(b.url, timeout=None)
        assert 0.5 < time.monotonic() - started < 1.3


def test_a_session_stays_bound_to_its_browser_on_every_process(redis_server) -> None:
    settings = {"browser_cookie": "BAYEUX_BROWSER"}
    with node(redis_server.url, **settings) as a, node(redis_server.url, **settings) as b:
        wait_ready(a, b)
        answer = post_json(a.url, [handshake_message()])
        mine = answer.headers["Set-Cookie"].split(";")[0]
        client_id = answer.json()[0]["clientId"]
        connect = {
            "channel": "/meta/connect",
            "clientId": client_id,
            "connectionType": "long-polling",
            "advice": {"timeout": 0},
        }
        other = {"Cookie": "BAYEUX_BROWSER=0123456789abcdef"}
        # A view on b (a publish) and a takeover by b (a connect) both check the binding.
        publish = {"channel": "/x", "clientId": client_id, "data": 1}
        assert post_json(b.url, [publish], headers=other).json()[0]["successful"] is False
        assert post_json(b.url, [connect], headers=other).json()[-1]["successful"] is False
        # Refused where the record is, before anything moved: a still serves it.
        assert a.call(lambda: client_id in a.endpoint.server.sessions)
        assert not b.call(lambda: client_id in b.endpoint.server.sessions)
        assert b.call(lambda: b.endpoint.server.stats.refused["other-browser"]) == 2
        # Nor may another browser's event stream take it.
        stream = request(
            b.url, "GET", path=f"/{client_id}", headers={**other, "Accept": "text/event-stream"}
        )
        assert stream.status == 404
        assert a.call(lambda: client_id in a.endpoint.server.sessions)
        assert post_json(b.url, [connect], headers={"Cookie": mine}).json()[-1]["successful"]
        assert b.call(lambda: client_id in b.endpoint.server.sessions)


def test_a_websocket_on_another_process_cannot_move_a_session(redis_server) -> None:
    """With --require-handshake-per-connection, a WebSocket may not take over a session made
    elsewhere: refused before the session moves away from its own client."""
    settings = {"require_handshake_per_connection": True}
    with node(redis_server.url, **settings) as a, node(redis_server.url, **settings) as b:
        wait_ready(a, b)
        client = Client(a.url)
        ws = RawWebSocket(f"ws://127.0.0.1:{b.port}/cometd")
        try:
            connect = {"channel": "/meta/connect", "clientId": client.id}
            ws.send([{**connect, "connectionType": "websocket"}])
            reply = ws.read()[0]
            assert reply["successful"] is False and reply["error"].startswith("402")
        finally:
            ws.close()
        assert a.call(lambda: client.id in a.endpoint.server.sessions)
        assert b.call(lambda: b.endpoint.server.stats.refused["other-connection"]) == 1
        assert client.connect(a.url, timeout=None)["successful"] is True


def kick_service(server: Any, removed: list) -> None:
    """Installs /service/kick-me (the server disconnects whoever calls it) and records
    removals, as an application would."""

    def kick(request: Any) -> str:
        server.disconnect(request.session)
        return "bye"

    server.add_service("/service/kick-me", kick)
    server.on_session_removed(lambda session, reason: removed.append((session.id, reason)))


def test_a_view_kicked_by_its_own_service_call_gets_no_reply(redis_server) -> None:
    """A session kicked from a process that only has a view of it (the service runs there):
    the service's reply is not sent through the log to the process serving it, as it is not
    sent to a session kicked where it is served. (It used to be, and could reach the held
    connect before the kick did: a plain reply with retry advice instead of `none`.)"""
    import redis

    with node(redis_server.url) as a, node(redis_server.url) as b:
        wait_ready(a, b)
        a.call(lambda: kick_service(a.endpoint.server, []))
        b.call(lambda: kick_service(b.endpoint.server, []))
        kicked = Client(a.url)
        kicked.connect(a.url)
        assert kicked.publish(b.url, "/service/kick-me", None)["successful"] is True
        time.sleep(0.3)  # what b appends reaches Redis in the background
        store: Any = redis.Redis.from_url(redis_server.url)
        addressed = [
            fields
            for _, fields in store.xrange("bayeux-test:log")
            if fields.get(b"t") == kicked.id.encode()
        ]
        assert addressed == []


def test_a_disconnect_on_one_process_stops_the_client_on_every_process(redis_server) -> None:
    """BayeuxServer.disconnect of a session another process serves: that process ends it (its
    listeners see KICKED) and answers its held connect `reconnect: none`; a later connect on
    any process is told to stop too, not to handshake again."""
    from bayeux import Ended

    # Connects held 10 s: the kick, through Redis, must reach the held one on a loaded machine.
    long = {"timeout": 10000}
    with node(redis_server.url, **long) as a, node(redis_server.url, **long) as b:
        wait_ready(a, b)
        removed_a: list = []
        a.call(lambda: kick_service(a.endpoint.server, removed_a))
        b.call(lambda: kick_service(b.endpoint.server, []))
        # Held on a, kicked from b: the held connect carries the stop.
        held = Client(a.url)
        held.connect(a.url)  # the first connect, answered at once
        answer: list = []
        poll = threading.Thread(target=lambda: answer.append(held.connect(a.url, timeout=None)))
        poll.start()
        time.sleep(0.2)
        assert held.publish(b.url, "/service/kick-me", None)["successful"] is True
        poll.join(5)
        assert answer and answer[0]["advice"]["reconnect"] == "none"
        assert removed_a == [(held.id, Ended.KICKED)]
        # Not held anywhere, kicked from b: its next connect, on a or b, is told to stop.
        for where in (a.url, b.url):
            idle = Client(a.url)
            idle.connect(a.url)
            assert idle.publish(b.url, "/service/kick-me", None)["successful"] is True
            deadline = time.monotonic() + 5
            while a.call(lambda c=idle: c.id in a.endpoint.server.sessions):
                assert time.monotonic() < deadline, "the serving process never ended it"
                time.sleep(0.02)
            reply = idle.connect(where)
            assert reply["successful"] is False and reply["advice"]["reconnect"] == "none"
        # Kicked where it is served, its next connect elsewhere is told to stop too.
        local = Client(a.url)
        local.connect(a.url)
        assert local.publish(a.url, "/service/kick-me", None)["successful"] is True
        time.sleep(0.2)  # the record's end reaches Redis in the background
        reply = local.connect(b.url)
        assert reply["successful"] is False and reply["advice"]["reconnect"] == "none"
