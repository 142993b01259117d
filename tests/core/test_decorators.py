"""Decorators (core/decorators.py, core/annotations.py): services, remote calls, listeners and
server-side subscriptions on template channels, their names bound as keyword arguments; a
signature checked when decorated; service objects started and stopped with the endpoint."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import bayeux
from bayeux import BayeuxServer, Endpoint, ServiceError, Settings
from bayeux.core.threads import thread_safe

from ..helpers.core import client, one, run


async def call(server: BayeuxServer, client_id: str, channel: str, data: Any) -> dict[str, Any]:
    """Publishes to a service channel; the service's reply (the one delivery for it)."""
    reply = await one(server, channel=channel, clientId=client_id, data=data, id="7")
    assert reply["successful"] is True, reply
    for _ in range(5):
        await asyncio.sleep(0)  # an asynchronous service's task
    (answer,) = [d.message for d in server.sessions[client_id].drain()]
    assert answer["id"] == "7" and answer["channel"] == channel
    return answer


def test_a_service_gets_its_templates_names_as_keyword_arguments() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        seen: list[tuple[str, Any, str]] = []

        def engine(session, message, engine_id):
            seen.append((session.id, message["data"], engine_id))
            return {"engine": engine_id}

        assert server.service("/service/engines/{engine_id}")(engine) is engine
        client_id = await client(server)
        answer = await call(server, client_id, "/service/engines/e42", "status?")
        assert answer["successful"] is True and answer["data"] == {"engine": "e42"}
        assert seen == [(client_id, "status?", "e42")]

    run(scenario())


def test_sync_and_async_services_and_remote_calls() -> None:
    async def scenario() -> None:
        server = BayeuxServer()

        @server.service("/service/sync/{a}/{b}")
        def both(session, message, a, b):
            return [a, b]

        @server.service("/service/async/{a}")
        async def later(session, message, a):
            await asyncio.sleep(0)
            return a.upper()

        @server.remote_call("/service/price/{symbol}")
        async def price(session, data, symbol):
            if symbol != "ACME":
                raise ServiceError("Unknown symbol", {"symbol": symbol})
            return {"symbol": symbol, "qty": data["qty"], "price": 42.0}

        @server.remote_call("/service/plain")
        def plain(session, data):
            return data * 2

        client_id = await client(server)
        assert (await call(server, client_id, "/service/sync/x/y", None))["data"] == ["x", "y"]
        assert (await call(server, client_id, "/service/async/x", None))["data"] == "X"
        answer = await call(server, client_id, "/service/price/ACME", {"qty": 3})
        assert answer["data"] == {"symbol": "ACME", "qty": 3, "price": 42.0}
        answer = await call(server, client_id, "/service/price/XYZ", {"qty": 3})
        assert answer["successful"] is False
        assert answer["error"] == "400:/service/price/XYZ:Unknown symbol"
        assert answer["data"] == {"symbol": "XYZ"}
        assert (await call(server, client_id, "/service/plain", 21))["data"] == 42

    run(scenario())


def test_templates_sharing_a_pattern_are_routed_and_the_rest_falls_back() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.add_service("/service/a/**", lambda request: "fallback")

        @server.service("/service/a/{x}/b")
        def b(session, message, x):
            return f"b:{x}"

        @server.service("/service/a/{x}/c")
        def c(session, message, x):
            return f"c:{x}"

        client_id = await client(server)
        assert (await call(server, client_id, "/service/a/1/b", None))["data"] == "b:1"
        assert (await call(server, client_id, "/service/a/2/c", None))["data"] == "c:2"
        assert (await call(server, client_id, "/service/a/3/d", None))["data"] == "fallback"

        other = BayeuxServer()

        @other.service("/service/q/{x}/b")
        def only(session, message, x):
            return x

        client_id = await client(other)
        answer = await call(other, client_id, "/service/q/1/z", None)
        assert answer["successful"] is False
        assert answer["error"] == "400:/service/q/1/z:Unknown service"

    run(scenario())


@pytest.mark.parametrize(
    ("kind", "channel", "function", "says"),
    [
        ("service", "/service/e/{engine_id}", lambda session, message: 0, "'engine_id'"),
        ("service", "/service/e/{engine_id}", lambda session, engine_id: 0, "missing"),
        ("remote_call", "/service/e/{id}", lambda session, data, ident: 0, "'id'"),
        ("listener", "/chat/{room}", lambda session, message, room: 0, "missing"),
        ("listener", "/chat/{message}", lambda session, channel, message: 0, "{message}"),
        ("subscription", "/stock/{symbol}", lambda message: 0, "'symbol'"),
        ("subscription", "/stock/{symbol}", lambda message, symbol, extra: 0, "extra"),
    ],
)
def test_a_wrong_signature_fails_when_decorated(
    kind: str, channel: str, function: Any, says: str
) -> None:
    server = BayeuxServer()
    decorator = getattr(server, kind)(channel)
    with pytest.raises(TypeError, match=says):
        decorator(function)
    assert not server.hooks.channels  # nothing registered


def test_signatures_that_fit() -> None:
    server = BayeuxServer()
    server.service("/service/e/{a}")(lambda *args, **names: 0)
    server.service("/service/f/{a}")(lambda session, message, *, a, extra=1: 0)
    server.listener("/chat/{room}")(lambda session, channel, message, **names: None)
    server.subscription("/stock/{symbol}")(lambda message, symbol, more=None: None)


def test_what_each_decorator_may_be_put_on() -> None:
    server = BayeuxServer()
    with pytest.raises(ValueError, match="services live on"):
        server.service("/chat/{room}")
    with pytest.raises(ValueError, match="services live on"):
        server.remote_call("/price")
    with pytest.raises(ValueError, match="broadcast"):
        server.subscription("/service/{x}")
    with pytest.raises(ValueError, match="meta"):
        server.listener("/meta/{x}")
    with pytest.raises(ValueError):
        server.listener("/chat/x{room}")


def test_a_listener_binds_the_template_changes_and_drops() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        seen: list[tuple[str, str]] = []

        @server.listener("/chat/{room}")
        def moderate(session, channel, message, room):
            seen.append((channel, room))
            if room == "quiet":
                return False
            message["data"] = f"[{room}] {message['data']}"
            return None

        @server.listener("/game/{game}/moves")
        async def moves(session, channel, message, game):
            await asyncio.sleep(0)
            return message["data"] != "cheat"

        client_id = await client(server)
        subscribe = {"channel": "/meta/subscribe", "clientId": client_id}
        await one(server, **subscribe, subscription="/chat/*")
        await one(server, **subscribe, subscription="/game/**")
        reply = await one(server, channel="/chat/quiet", clientId=client_id, data="hi")
        assert reply["error"] == "404:/chat/quiet:Message deleted"
        reply = await one(server, channel="/chat/lobby", clientId=client_id, data="hi")
        assert reply["successful"] is True
        for data in ("e4", "cheat"):
            await one(server, channel="/game/g1/moves", clientId=client_id, data=data)
        await one(server, channel="/game/g1/chat", clientId=client_id, data="cheat")  # not moves
        delivered = [d.message["data"] for d in server.sessions[client_id].drain()]
        assert delivered == ["[lobby] hi", "e4", "cheat"]
        assert seen == [("/chat/quiet", "quiet"), ("/chat/lobby", "lobby")]

    run(scenario())


def test_a_subscription_sees_each_message_with_its_bound_names() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        seen: list[tuple[str, Any, str]] = []

        @server.subscription("/stock/{symbol}")
        def ticked(message, symbol):
            seen.append(("sync", message["data"], symbol))

        @server.subscription("/stock/{market}/{symbol}")
        async def deep(message, market, symbol):
            await asyncio.sleep(0)
            seen.append(("async", message["data"], f"{market}:{symbol}"))

        await server.start_services()
        client_id = await client(server)
        await one(server, channel="/stock/ACME", clientId=client_id, data=1)
        server.publish("/stock/NYSE/IBM", 2)
        server.publish("/stock/NYSE/IBM/extra", 3)  # the pattern's, not the template's
        for _ in range(5):
            await asyncio.sleep(0)
        assert sorted(seen) == [("async", 2, "NYSE:IBM"), ("sync", 1, "ACME")]

        @server.subscription("/news")  # registered once started: subscribed at once
        def news(message):
            seen.append(("news", message["data"], ""))

        server.publish("/news", "extra!")
        await asyncio.sleep(0)
        assert seen[-1] == ("news", "extra!", "")
        (subscriber,) = [s for s in server.sessions.values() if s.local]
        assert subscriber.deadline is None  # never swept
        await server.stop_services()
        assert subscriber.id not in server.sessions

    run(scenario())


def test_a_failing_subscription_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.subscription("/x/{y}")(lambda message, y: 1 / 0)
        await server.start_services()
        server.publish("/x/1", None)
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR):
        run(scenario())
    assert any("subscription /x/{y} failed" in r.getMessage() for r in caplog.records)


class Engines:
    """A service object as CometD's annotated services are written."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    @bayeux.service("/service/engines/{engine_id}")
    def engine(self, session, message, engine_id):
        return {"engine": engine_id, "started": "start" in self.events}

    @bayeux.remote_call("/service/engines/{engine_id}/stop")
    async def stop_engine(self, session, data, engine_id):
        return f"stopping {engine_id}"

    @bayeux.listener("/engines/{engine_id}")
    def heard(self, session, channel, message, engine_id):
        self.events.append(("heard", engine_id))

    @bayeux.subscription("/engines/{engine_id}")
    def seen(self, message, engine_id):
        self.events.append(("seen", engine_id, message["data"]))

    @bayeux.on_start
    async def open(self) -> None:
        await asyncio.sleep(0)
        self.events.append("start")

    @bayeux.on_stop
    def close(self) -> None:
        self.events.append("stop")


def test_add_services_registers_marked_methods_and_the_endpoint_starts_and_stops_them() -> None:
    async def scenario() -> None:
        endpoint = Endpoint(Settings())
        engines = Engines()
        assert endpoint.add_services(engines) is engines
        server = endpoint.server
        assert engines.events == []
        endpoint.start()
        for _ in range(5):
            await asyncio.sleep(0)
        assert engines.events == ["start"]
        client_id = await client(server)
        answer = await call(server, client_id, "/service/engines/e1", None)
        assert answer["data"] == {"engine": "e1", "started": True}
        answer = await call(server, client_id, "/service/engines/e1/stop", None)
        assert answer["data"] == "stopping e1"
        await one(server, channel="/engines/e2", clientId=client_id, data="vroom")
        await asyncio.sleep(0)
        assert engines.events[1:] == [("heard", "e2"), ("seen", "e2", "vroom")]
        await endpoint.shutdown(0.1)
        assert engines.events[-1] == "stop"

    run(scenario())


def test_add_services_checks_every_signature_before_registering_any() -> None:
    class Broken:
        @bayeux.listener("/a/{x}")
        def fine(self, session, channel, message, x):
            pass

        @bayeux.service("/service/{id}")
        def wrong(self, session, message):
            pass

    server = BayeuxServer()
    with pytest.raises(TypeError, match="'id'"):
        server.add_services(Broken())
    assert not server.hooks.channels


def test_a_service_object_added_after_start_starts_at_once() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        await server.start_services()
        engines = server.add_services(Engines())
        for _ in range(3):
            await asyncio.sleep(0)
        assert engines.events == ["start"]
        await server.stop_services()
        assert engines.events == ["start", "stop"]

    run(scenario())


def test_a_mark_with_a_bad_template_fails_where_it_is_written() -> None:
    with pytest.raises(ValueError):
        bayeux.service("/service/{id")


def test_the_event_registrations_are_decorators() -> None:
    server = BayeuxServer()
    endpoint = Endpoint(server=server)

    def added(*args: Any) -> None:
        pass

    for register in (
        server.on_session_added,
        server.on_session_removed,
        server.on_subscribed,
        server.on_unsubscribed,
        server.on_presence,
        endpoint.on_session_added,
        endpoint.on_session_removed,
        endpoint.on_subscribed,
        endpoint.on_unsubscribed,
    ):
        assert register(added) is added


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        *(
            (BayeuxServer, n)
            for n in (
                "service",
                "remote_call",
                "listener",
                "subscription",
                "add_services",
                "start_services",
                "stop_services",
            )
        ),
        *(
            (Endpoint, n)
            for n in (
                "service",
                "remote_call",
                "message_listener",
                "subscription",
                "add_services",
                "on_session_added",
                "on_session_removed",
                "on_subscribed",
                "on_unsubscribed",
            )
        ),
    ],
)
def test_the_registrations_cross_into_the_loop(owner: type, name: str) -> None:
    assert thread_safe(getattr(owner, name))
