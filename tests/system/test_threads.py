"""The public API from any thread: a FastAPI `def` route, worker threads, a coroutine awaited on
another thread's loop. A call from another thread runs on the server's loop, whole, and the
sessions it touches keep working afterwards (issue 32: a WebSocket session used to receive
nothing more after a publish from a thread pool)."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bayeux import BayeuxServer, Endpoint, LocalSession, ServerChannel, Settings
from bayeux.core.threads import LoopOwner, NotOnLoop, on_loop, thread_safe
from bayeux.testing import AsgiThread, ServerThread

from ..helpers.http import handshake, post_json, request
from ..helpers.rawws import RawWebSocket
from ..helpers.servers import example_under_uvicorn, handshake_message, ws_url


def _websocket_subscriber(url: str, channel: str) -> tuple[RawWebSocket, str]:
    ws = RawWebSocket(url)
    ws.send([handshake_message("websocket")])
    client_id = ws.read()[0]["clientId"]
    ws.send(
        [
            {"channel": "/meta/connect", "clientId": client_id, "connectionType": "websocket"},
            {"channel": "/meta/subscribe", "clientId": client_id, "subscription": channel},
        ]
    )
    seen: list[dict[str, Any]] = []
    while not any(m["channel"] == "/meta/subscribe" for m in seen):
        seen.extend(ws.read())
    return ws, client_id


def _read_data(ws: RawWebSocket, channel: str, count: int) -> list[Any]:
    data: list[Any] = []
    for _ in range(1000):  # bounded: each read waits at most the socket's timeout
        if len(data) >= count:
            break
        data.extend(m["data"] for m in ws.read() if m["channel"] == channel and "data" in m)
    return data


def _long_polling_subscriber(url: str, channel: str) -> str:
    client_id = handshake(url)
    subscribe = {"channel": "/meta/subscribe", "clientId": client_id, "subscription": channel}
    assert post_json(url, [subscribe]).json()[0]["successful"] is True
    connect = {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
    post_json(url, [connect])  # the first connect is answered at once
    return client_id


def _poll(url: str, client_id: str, channel: str) -> list[Any]:
    connect = {
        "channel": "/meta/connect",
        "clientId": client_id,
        "connectionType": "long-polling",
    }
    return [
        m["data"]
        for m in post_json(url, [connect]).json()
        if m["channel"] == channel and "data" in m
    ]


@pytest.fixture
def fastapi_host() -> Iterator[AsgiThread]:
    """FastAPI under uvicorn with the endpoint at /cometd and a plain `def` route that
    publishes: FastAPI runs it in its thread pool."""
    from fastapi import FastAPI

    endpoint = Endpoint(Settings(timeout=3000))
    app = FastAPI()
    app.router.routes.extend(endpoint.asgi().routes("/cometd"))

    @app.post("/news")
    def news(text: str) -> dict[str, Any]:
        return {
            "reached": endpoint.publish("/news", {"text": text}),
            "thread": threading.current_thread().name,
        }

    with AsgiThread(endpoint=endpoint, app=app) as host:
        yield host


def test_a_sync_fastapi_route_publishes_and_the_sessions_keep_receiving(
    fastapi_host: AsgiThread,
) -> None:
    url = fastapi_host.url
    base = url.removesuffix("/cometd")
    ws, ws_client = _websocket_subscriber(url, "/news")
    try:
        lp_client = _long_polling_subscriber(url, "/news")
        got: list[Any] = []
        poll = threading.Thread(target=lambda: got.extend(_poll(url, lp_client, "/news")))
        poll.start()
        answer = request(base + "/news?text=first", "POST")
        assert answer.status == 200, answer.body
        body = answer.json()
        assert body["reached"] == 2
        assert body["thread"] != "uvicorn"  # it did run in another thread than the loop's
        poll.join(10)
        assert got == [{"text": "first"}]
        assert _read_data(ws, "/news", 1) == [{"text": "first"}]
        # Afterwards the WebSocket session still receives: a route's publish, and its own.
        assert request(base + "/news?text=second", "POST").json()["reached"] == 2
        ws.send([{"channel": "/news", "clientId": ws_client, "data": "own", "id": "7"}])
        assert _read_data(ws, "/news", 2) == [{"text": "second"}, "own"]
        assert _poll(url, lp_client, "/news") == [{"text": "second"}, "own"]
    finally:
        ws.sock.close()


def test_many_threads_publishing_at_once_lose_and_reorder_nothing() -> None:
    threads, each = 8, 40
    with ServerThread(Settings(timeout=5000)) as server:
        ws, _ = _websocket_subscriber(ws_url(server), "/load")
        try:
            start = threading.Barrier(threads)
            failures: list[BaseException] = []

            def publisher(index: int) -> None:
                start.wait(10)
                try:
                    for n in range(each):
                        server.endpoint.publish("/load", {"thread": index, "n": n})
                except BaseException as exc:  # reported below, on the test's thread
                    failures.append(exc)

            workers = [threading.Thread(target=publisher, args=(i,)) for i in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
            assert failures == []
            data = _read_data(ws, "/load", threads * each)
        finally:
            ws.sock.close()
    by_thread: defaultdict[int, list[int]] = defaultdict(list)
    for item in data:
        by_thread[item["thread"]].append(item["n"])
    assert len(data) == threads * each
    assert all(by_thread[i] == list(range(each)) for i in range(threads))


def test_coroutine_methods_awaited_on_another_threads_loop_run_on_the_servers() -> None:
    with ServerThread(Settings(timeout=5000)) as server:
        bayeux = server.endpoint.server
        seen: list[Any] = []
        local = asyncio.run(LocalSession.connect(bayeux))  # on a loop of this thread's own
        asyncio.run(local.subscribe("/local", lambda message: seen.append(message["data"])))
        session = bayeux.sessions[local.id]
        asyncio.run(bayeux.associate("alice", session))
        assert asyncio.run(bayeux.online_users()) == ["alice"]
        assert asyncio.run(bayeux.deliver_to_user("alice", "/local", "direct")) == 1
        assert server.endpoint.publish("/local", "broadcast") == 1
        for _ in range(200):
            if len(seen) == 2:
                break
            threading.Event().wait(0.01)
        assert seen == ["direct", "broadcast"]
        assert asyncio.run(local.publish("/local", "own"))["successful"] is True


def test_registration_from_a_thread_applies_whole_on_the_loop() -> None:
    with ServerThread(Settings(timeout=5000)) as server:
        bayeux = server.endpoint.server
        ran_on: list[str] = []

        def listener(session: object, channel: str, message: dict[str, Any]) -> bool:
            ran_on.append(threading.current_thread().name)
            return True

        bayeux.add_message_listener("/t/**", listener)
        bayeux.set_lazy("/lazy/*")
        url = server.url
        client_id = handshake(url)
        message = {"channel": "/t/x", "clientId": client_id, "data": 1}
        assert post_json(url, [message]).json()[0]["successful"] is True
        assert ran_on == ["bayeux-server"]
        with pytest.raises(ValueError, match="services live on /service"):
            bayeux.add_service("/not-a-service", lambda request: None)


def test_channels_are_configured_on_the_loop_from_another_thread() -> None:
    with ServerThread(Settings(timeout=5000)) as server:
        bayeux = server.endpoint.server
        ran_on: list[str] = []
        channel = bayeux.channel(
            "/t/room", lambda c: ran_on.append(threading.current_thread().name)
        )
        channel.lazy_timeout = 0.1
        channel.broadcast_to_publisher = False
        channel.add_listener(lambda s, c, m: ran_on.append(threading.current_thread().name))
        client_id = handshake(server.url)
        message = {"channel": "/t/room", "clientId": client_id, "data": 1}
        assert post_json(server.url, [message]).json()[0]["successful"] is True
        assert ran_on == ["bayeux-server", "bayeux-server"]
        assert server.call(lambda: bayeux.channel_table.lazy_seconds("/t/room", 5.0)) == 0.1
        with bayeux.batch():  # opened and closed on the loop
            assert server.call(lambda: bayeux.batch_depth) == 1
        assert server.call(lambda: bayeux.batched) is None


def test_an_exception_crosses_back_to_the_calling_thread() -> None:
    with ServerThread() as server:
        with pytest.raises(ValueError, match="cannot publish to '/meta/x'"):
            server.endpoint.publish("/meta/x", 1)


def test_a_call_from_a_thread_after_the_loop_closed_is_refused_clearly() -> None:
    owner = LoopOwner()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.call_soon(owner.bind_running)
        loop.run_forever()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(5)
    try:
        assert owner.call(loop, lambda: threading.current_thread() is thread)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    with pytest.raises(NotOnLoop, match="stopped before the call could run"):
        owner.call(loop, lambda: None)


class _Counter:
    def __init__(self) -> None:
        self.loop_owner = LoopOwner()
        self.where: list[int] = []

    @on_loop
    def touch(self) -> int:
        self.where.append(threading.get_ident())
        return len(self.where)


class _Where:
    """A method marked like the server's, on a given owner: tells where it ran."""

    def __init__(self, owner: LoopOwner) -> None:
        self.loop_owner = owner

    @on_loop
    def thread(self) -> str:
        return threading.current_thread().name


def test_without_a_running_loop_a_call_runs_where_it_is_made() -> None:
    counter = _Counter()
    assert counter.touch() == 1
    assert counter.where == [threading.get_ident()]


# What applications call (docs/embedding.md, "Threads"): each must cross into the loop. The
# transports' own methods (handle, finish_connect, ...) run on the loop already and are not
# listed: they pay nothing for this.
APPLICATION_API: dict[type, tuple[str, ...]] = {
    Endpoint: ("publish", "shutdown"),
    BayeuxServer: (
        "add_extension",
        "remove_extension",
        "add_authorizer",
        "add_message_listener",
        "add_service",
        "set_lazy",
        "on_session_added",
        "on_session_removed",
        "on_subscribed",
        "on_unsubscribed",
        "on_presence",
        "deliver_to_user",
        "deliver_to_client",
        "online_users",
        "disconnect",
        "set_timing",
        "publish",
        "deliver",
        "create_session",
        "remove_session",
        "associate",
        "dissociate",
        "subscribe",
        "unsubscribe",
        "sweep",
        "shutdown",
        "channel",
        "find_channel",
        "add_channel_initializer",
        "on_channel_added",
        "on_channel_removed",
        "deployment_subscribers",
        "_open_batch",
        "_close_batch",
    ),
    LocalSession: ("subscribe", "unsubscribe", "publish", "disconnect"),
    ServerChannel: (
        "conflate",
        "add_listener",
        "remove_listener",
        "add_authorizer",
        "remove_authorizer",
        "subscribers",
        "deployment_subscribers",
        "remove",
    ),
}


@pytest.mark.parametrize(
    ("owner", "name"),
    [(owner, name) for owner, names in APPLICATION_API.items() for name in names],
)
def test_each_application_method_crosses_into_the_loop(owner: type, name: str) -> None:
    method: Callable[..., Any] = getattr(owner, name)
    assert thread_safe(method)


@pytest.mark.parametrize(
    "prop",
    [
        BayeuxServer.policy,
        ServerChannel.lazy,
        ServerChannel.lazy_timeout,
        ServerChannel.persistent,
        ServerChannel.broadcast_to_publisher,
    ],
)
def test_setters_cross_into_the_loop(prop: property) -> None:
    assert isinstance(prop, property) and thread_safe(prop.fset)


def test_a_django_sync_view_publishes_to_a_websocket_session_again_and_again() -> None:
    """examples/django/app.py under uvicorn: its `announce` view is a plain (sync) Django view,
    which Django runs in a thread."""
    with example_under_uvicorn("examples.django.app:app") as base:
        login = request(base + "/login?user=alice", "POST")
        cookie = login.headers["Set-Cookie"].split(";")[0]
        ws = RawWebSocket(base + "/cometd", headers=f"Cookie: {cookie}\r\n")
        try:
            ws.send([handshake_message("websocket")])
            client_id = ws.read()[0]["clientId"]
            ws.send(
                [
                    {
                        "channel": "/meta/connect",
                        "clientId": client_id,
                        "connectionType": "websocket",
                    },
                    {
                        "channel": "/meta/subscribe",
                        "clientId": client_id,
                        "subscription": "/user/alice",
                    },
                ]
            )
            for text in ("one", "two", "three"):
                answer = request(f"{base}/announce/alice?text={text}", "POST")
                assert answer.status == 200, answer.body
                assert answer.json() == {"reached": 1}
            assert _read_data(ws, "/user/alice", 3) == [
                {"text": "one"},
                {"text": "two"},
                {"text": "three"},
            ]
        finally:
            ws.sock.close()


def test_a_new_loop_on_the_same_thread_takes_the_server_over() -> None:
    """A second asyncio.run on the thread that served the server (a test's, an application
    restarted in its process): the new loop serves it, and calls from other threads cross
    into the new one, not the closed one."""
    server = BayeuxServer()
    ran_on: list[str] = []

    async def serve_once() -> None:
        await server.handle([{"channel": "/meta/handshake", "version": "1.0"}])
        loop = asyncio.get_running_loop()
        assert server.loop_owner.loop is loop
        probe = _Where(server.loop_owner)
        worker = threading.Thread(target=lambda: ran_on.append(probe.thread()), name="worker")
        worker.start()
        while worker.is_alive():
            await asyncio.sleep(0.01)

    asyncio.run(serve_once())
    asyncio.run(serve_once())
    assert ran_on == [threading.current_thread().name] * 2  # the loop's, not the worker's


def test_an_applications_own_loop_awaiting_first_does_not_take_the_server_over() -> None:
    """An application's loop on another thread awaits a coroutine method before the server
    serves anything: the call runs there (nothing else touches the server yet) without
    binding it, and the loop that then serves the server owns it."""
    bayeux = BayeuxServer()
    app_loop = asyncio.new_event_loop()
    app_thread = threading.Thread(target=app_loop.run_forever, name="app-loop")
    app_thread.start()
    try:
        users = asyncio.run_coroutine_threadsafe(bayeux.online_users(), app_loop).result(5)
        assert users == [] and bayeux.loop_owner.loop is None

        async def serve() -> asyncio.AbstractEventLoop:
            await bayeux.handle([{"channel": "/meta/handshake", "version": "1.0"}])
            return asyncio.get_running_loop()

        server_loop = asyncio.new_event_loop()
        try:
            assert server_loop.run_until_complete(serve()) is bayeux.loop_owner.loop
        finally:
            server_loop.close()
    finally:
        app_loop.call_soon_threadsafe(app_loop.stop)
        app_thread.join(5)
        app_loop.close()


def test_two_loops_serving_one_server_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    """A server served from two running loops (a test helper started twice did this) races on
    its state: the second loop's calls cross into the first, and a warning says so, once."""
    bayeux = BayeuxServer()
    first = asyncio.new_event_loop()
    thread = threading.Thread(target=first.run_forever, name="first-loop")
    thread.start()
    handshake_message = {"channel": "/meta/handshake", "version": "1.0"}
    try:
        asyncio.run_coroutine_threadsafe(bayeux.handle([dict(handshake_message)]), first).result(5)
        assert bayeux.loop_owner.loop is first
        with caplog.at_level("WARNING", logger="bayeux.threads"):
            for _ in range(2):
                asyncio.run(bayeux.handle([dict(handshake_message)]))
        warnings = [r for r in caplog.records if "two running event loops" in r.getMessage()]
        assert len(warnings) == 1
        assert bayeux.loop_owner.loop is first
    finally:
        first.call_soon_threadsafe(first.stop)
        thread.join(5)
        first.close()
