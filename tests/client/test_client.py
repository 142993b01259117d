"""bayeux.client against this server on every transport it offers: publish and subscribe,
replies and refusals, services, the server's advice, lost sessions, batching and bounds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bayeux import Endpoint, SecurityPolicy, ServerSession, ServiceError, Settings
from bayeux.client import (
    BayeuxError,
    Client,
    ClientClosed,
    ClientExtension,
    QueueFull,
    TimesyncExtension,
)
from bayeux.testing import ServerThread
from tests.helpers.aio import run, until

SETTINGS = Settings(timeout=1500, max_interval=3000, sweep_period=100)

# (transports the client is given, the one it must end up on, msgpack asked)
TRANSPORTS = {
    "websocket-json": (["websocket"], "websocket", False),
    "websocket-msgpack": (["websocket"], "websocket", True),
    "long-polling": (["long-polling"], "long-polling", False),
}


class NoPrivate(SecurityPolicy):
    def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        ext = message.get("ext") or {}
        return ext.get("token") != "bad"

    def can_publish(self, session: ServerSession, channel: str, message: dict[str, Any]) -> bool:
        return not channel.startswith("/private/")

    def can_subscribe(self, session: ServerSession, channel: str, message: dict[str, Any]) -> bool:
        return not channel.startswith("/private/")


@pytest.fixture(scope="module")
def server():
    endpoint = Endpoint(SETTINGS)
    endpoint.server.policy = NoPrivate()

    def echo(request: Any) -> Any:
        if request.data == "fail":
            raise ServiceError("no thanks", {"why": "asked to"})
        return {"echo": request.data}

    endpoint.server.add_service("/service/echo", echo)
    with ServerThread(endpoint=endpoint) as running:
        yield running


def client(server: ServerThread, kind: str, **options: Any) -> Client:
    transports, _, msgpack = TRANSPORTS[kind]
    return Client(server.url, transports=transports, msgpack=msgpack, **options)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_publish_and_subscribe_on_each_transport(server, kind: str) -> None:
    async def scenario() -> None:
        received: list[dict] = []
        wild: list[dict] = []
        async with client(server, kind) as subscriber, client(server, kind) as publisher:
            assert subscriber.transport is not None
            assert subscriber.transport.name == TRANSPORTS[kind][1]
            if kind == "websocket-msgpack":
                assert getattr(subscriber.transport, "binary", False) is True
            await subscriber.subscribe("/chat/room", received.append)
            wildcard = await subscriber.subscribe("/chat/*", wild.append)
            for n in range(10):
                reply = await publisher.publish("/chat/room", {"n": n})
                assert reply["successful"] is True and reply["channel"] == "/chat/room"
            await until(lambda: len(received) == 10 and len(wild) == 10)
            assert [m["data"]["n"] for m in received] == list(range(10))
            await subscriber.unsubscribe(wildcard)
            await publisher.publish("/chat/room", {"n": 10})
            await until(lambda: len(received) == 11)
            assert len(wild) == 10  # no longer subscribed

    run(scenario)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_refusals_raise_the_bayeux_error(server, kind: str) -> None:
    async def scenario() -> None:
        async with client(server, kind) as c:
            with pytest.raises(BayeuxError) as refused:
                await c.publish("/private/x", 1)
            assert refused.value.code == 403 and refused.value.reply is not None
            with pytest.raises(BayeuxError, match="403:/private/x"):
                await c.subscribe("/private/x", print)
            await c.publish("/public/x", 1)  # the session goes on
        refused_client = client(server, kind, handshake_ext={"token": "bad"})
        with pytest.raises(BayeuxError, match="403::Handshake denied"):
            await refused_client.open()
        assert refused_client.state == "closed"

    run(scenario)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_remote_call_returns_the_service_data(server, kind: str) -> None:
    async def scenario() -> None:
        async with client(server, kind) as c:
            assert await c.remote_call("/service/echo", {"a": 1}) == {"echo": {"a": 1}}
            with pytest.raises(BayeuxError) as failed:
                await c.remote_call("/service/echo", "fail")
            assert failed.value.reply is not None
            assert failed.value.reply["data"] == {"why": "asked to"}
            with pytest.raises(ValueError):
                await c.remote_call("/chat/x", 1)

    run(scenario)


def test_messages_iterates_a_subscription(server) -> None:
    async def scenario() -> None:
        async with client(server, "websocket-json") as c:
            stream = c.messages("/feed")
            first = asyncio.ensure_future(stream.__anext__())
            await until(lambda: "/feed" in c._subscribed)
            await c.publish("/feed", 1)
            await c.publish("/feed", 2)
            assert (await first)["data"] == 1
            assert (await stream.__anext__())["data"] == 2
            await stream.aclose()
            assert "/feed" not in c._subscribed  # unsubscribed when the iteration stopped

    run(scenario)


def test_websocket_falls_back_to_long_polling_when_not_offered() -> None:
    async def scenario(url: str) -> None:
        async with Client(url) as c:  # websocket first, then long-polling
            assert c.transport is not None and c.transport.name == "long-polling"
            got: list[dict] = []
            await c.subscribe("/x", got.append)
            await c.publish("/x", "hi")
            await until(lambda: len(got) == 1)

    settings = Settings(timeout=1500, allowed_transports=("long-polling",))
    with ServerThread(settings) as server:
        run(lambda: scenario(server.url))


@pytest.mark.parametrize("kind", ["websocket-json", "long-polling"])
def test_a_forgotten_session_handshakes_again_and_subscribes_again(kind: str) -> None:
    with ServerThread(SETTINGS) as server:

        async def scenario() -> None:
            got: list[dict] = []
            async with client(server, kind) as c:
                await c.subscribe("/again", got.append)
                first_id = c.client_id
                assert first_id is not None
                session = server.endpoint.server.sessions[first_id]
                server.call(server.endpoint.server.remove_session, session)
                # The next connect is told 402: a new session, subscribed again.
                await until(lambda: c.client_id not in (None, first_id), within=10)
                await until(lambda: "/again" in c._subscribed)
                await asyncio.sleep(0.2)
                server.call(server.endpoint.server.publish, "/again", "after")
                await until(lambda: [m["data"] for m in got] == ["after"])

        run(scenario)


@pytest.mark.parametrize("kind", ["websocket-json", "long-polling"])
def test_advice_reconnect_none_closes_the_client(kind: str) -> None:
    with ServerThread(SETTINGS) as server:

        async def scenario() -> None:
            c = client(server, kind)
            await c.open()
            await asyncio.sleep(0.1)
            assert c.client_id is not None
            session = server.endpoint.server.sessions[c.client_id]
            server.call(server.endpoint.server.disconnect, session)
            await until(lambda: c.state == "closed", within=10)
            with pytest.raises(ClientClosed):
                await c.publish("/x", 1)
            await c.disconnect()

        run(scenario)


def test_messages_of_one_turn_go_in_one_batch_and_the_queue_is_bounded(server) -> None:
    async def scenario() -> None:
        async with client(server, "long-polling", max_pending=5) as c:
            assert c.transport is not None
            batches: list[int] = []
            send = c.transport.send

            async def counted(messages: list[dict], *, timeout: float) -> None:
                if messages[0]["channel"] != "/meta/connect":
                    batches.append(len(messages))
                await send(messages, timeout=timeout)

            c.transport.send = counted  # type: ignore[method-assign]
            replies = await asyncio.gather(*(c.publish("/b", n) for n in range(5)))
            assert all(r["successful"] for r in replies) and batches == [5]
            results = await asyncio.gather(
                *(c.publish("/b", n) for n in range(8)), return_exceptions=True
            )
            assert sum(isinstance(r, QueueFull) for r in results) == 3
            assert sum(isinstance(r, dict) and r["successful"] for r in results) == 5

    run(scenario)


def test_timesync_estimates_the_server_clock(server) -> None:
    async def scenario() -> None:
        skewed = TimesyncExtension(clock=lambda: time.time() - 5.0)  # 5 s behind the server
        async with client(server, "long-polling", extensions=[skewed]):
            await until(lambda: abs(skewed.offset - 5000) < 500)
            assert abs(skewed.server_time() - time.time() * 1000) < 500

    run(scenario)


def test_a_server_that_is_not_there_fails_the_open() -> None:
    from bayeux.client import TransportError
    from bayeux.testing import free_port

    async def scenario() -> None:
        c = Client(f"http://127.0.0.1:{free_port()}/cometd", request_timeout=2)
        with pytest.raises(TransportError, match="no transport reached the server"):
            await c.open()
        assert c.state == "closed"

    run(scenario)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        Client("http://127.0.0.1:1/cometd", transports=["carrier-pigeon"])
    with pytest.raises(ValueError):
        Client("http://127.0.0.1:1/cometd", transports=[])


def test_multiple_clients_advice_spaces_the_connects() -> None:
    """Two sessions of one browser: the second's connects are answered at once with advice
    `multiple-clients` and an interval, which the client waits between connects."""

    class ConnectCounter(ClientExtension):
        def __init__(self) -> None:
            self.advice: list[dict] = []

        def incoming(self, message: dict[str, Any]) -> dict[str, Any] | None:
            if message.get("channel") == "/meta/connect":
                self.advice.append(message.get("advice") or {})
            return message

    settings = Settings(timeout=1500, multi_session_interval=300)
    with ServerThread(settings) as server:

        async def scenario() -> None:
            async with Client(server.url, transports=["long-polling"]) as first:
                assert first._http is not None
                browser = {c.key: c.value for c in first._http.cookie_jar}
                assert "BAYEUX_BROWSER" in browser
                counter = ConnectCounter()
                second = Client(
                    server.url, transports=["long-polling"], cookies=browser, extensions=[counter]
                )
                got: list[dict] = []
                async with second:
                    await second.subscribe("/shared", got.append)
                    await asyncio.sleep(1.2)
                    server.call(server.endpoint.server.publish, "/shared", "still delivered")
                    await until(lambda: len(got) == 1)
                assert any(a.get("multiple-clients") for a in counter.advice)
                # One connect per 300 ms interval, not a connect answered at once in a loop.
                assert 3 <= len(counter.advice) <= 9

        run(scenario)


def test_a_websocket_that_never_answers_falls_back_then_fails_cleanly() -> None:
    """A server that upgrades WebSockets and answers nothing on them: the handshake times out
    on WebSocket and goes on to long-polling; with nothing else, open() fails with the reason."""
    from aiohttp import web

    from bayeux.client import TransportError
    from bayeux.testing import free_port

    async def scenario() -> None:
        async def silent(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                socket = web.WebSocketResponse()
                await socket.prepare(request)
                async for _ in socket:
                    pass  # read, never answer
                return socket
            raise web.HTTPServiceUnavailable()

        app = web.Application()
        app.router.add_route("*", "/cometd", silent)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            c = Client(f"http://127.0.0.1:{port}/cometd", request_timeout=0.3)
            with pytest.raises(TransportError) as failed:
                await c.open()
            assert "websocket: no handshake reply" in str(failed.value)
            assert "long-polling: HTTP 503" in str(failed.value)
            assert c.state == "closed"
        finally:
            await runner.cleanup()

    run(scenario)


def test_a_failure_inside_the_connect_loop_closes_the_client(server, monkeypatch) -> None:
    async def scenario() -> None:
        c = client(server, "long-polling")
        await c.open()

        def broken(reply: dict) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(c, "_advise", broken)
        await until(lambda: c.state == "closed")
        assert c.closed_reason is not None and "a bug" in c.closed_reason
        with pytest.raises(ClientClosed):
            await c.publish("/x", 1)

    run(scenario)
