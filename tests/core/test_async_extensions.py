"""Extensions written as coroutines: awaited on the way in, and on the way out without
reordering what one session receives."""

from __future__ import annotations

import asyncio

from bayeux import BayeuxServer, Extension, Settings
from bayeux.core.session import reply_ready

from ..helpers.core import client, held, one, run


class SlowGate(Extension):
    """Decides after a delay that depends on the message: later messages finish first."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    async def incoming(self, session, message):
        await asyncio.sleep(0.01)
        return message.get("data") != "forbidden"

    async def outgoing(self, session, message):
        data = message.get("data")
        if isinstance(data, int):
            await asyncio.sleep(0.02 if data % 2 == 0 else 0)
        else:
            await asyncio.sleep(0)
        self.seen.append(data)
        message.setdefault("ext", {})["gated"] = True
        return data != "drop"


class Boom(Extension):
    async def incoming(self, session, message):
        await asyncio.sleep(0)
        if message["channel"] == "/boom":
            raise RuntimeError("broken extension")
        return True

    async def outgoing(self, session, message):
        await asyncio.sleep(0)
        if message.get("data") == "boom":
            raise RuntimeError("broken extension")
        return True


def test_async_incoming_is_awaited_and_can_drop() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.add_extension(SlowGate())
        cid = await client(server)
        reply = await one(server, channel="/a", clientId=cid, data="forbidden")
        assert reply["error"] == "404:/a:Message deleted"
        reply = await one(server, channel="/a", clientId=cid, data="fine")
        assert reply["successful"] is True
        # The reply itself went through the asynchronous outgoing hook.
        assert reply["ext"] == {"gated": True}

    run(scenario())


def test_a_failing_async_extension_costs_its_message_only() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.add_extension(Boom())
        cid = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/x")
        outcome = await server.handle(
            [
                {"channel": "/boom", "clientId": cid, "data": 1, "id": "1"},
                {"channel": "/x", "clientId": cid, "data": "boom", "id": "2"},
                {"channel": "/x", "clientId": cid, "data": "ok", "id": "3"},
            ]
        )
        by_id = {r["id"]: r for r in outcome.replies}
        assert by_id["1"]["error"] == "500:/boom:Extension failed"
        assert by_id["3"]["successful"] is True
        await asyncio.sleep(0.01)
        # The broadcast the outgoing hook failed on is dropped; the next one arrives.
        assert [d.message["data"] for d in server.sessions[cid].drain()] == ["ok"]
        assert server.stats.errors["extension"] == 2

    run(scenario())


def test_async_outgoing_reply_drops_keep_the_batch_order() -> None:
    class DropOdd(Extension):
        async def outgoing(self, session, message):
            await asyncio.sleep(0.01 if message.get("id") == "1" else 0)
            return message.get("id") not in ("3",)

    async def scenario() -> None:
        server = BayeuxServer()
        server.add_extension(DropOdd())
        cid = await client(server)
        outcome = await server.handle(
            [{"channel": "/p", "clientId": cid, "data": n, "id": str(n)} for n in (1, 2, 3, 4)]
        )
        assert [r["id"] for r in outcome.replies] == ["1", "2", "4"]

    run(scenario())


def test_session_async_outgoing_keeps_the_order_of_deliveries() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        subscriber, publisher = await client(server), await client(server)
        gate = SlowGate()
        server.sessions[subscriber].add_extension(gate)
        await one(server, channel="/meta/subscribe", clientId=subscriber, subscription="/o")
        for n in [*range(6), "drop", 6]:
            await one(server, channel="/o", clientId=publisher, data=n)
        for n in (7, 8):
            server.publish("/o", n)
        server.deliver(server.sessions[subscriber], "/direct", 9)
        await asyncio.sleep(0.3)
        got = [d.message for d in server.sessions[subscriber].drain()]
        assert [m["data"] for m in got] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        assert all(m["ext"] == {"gated": True} for m in got)
        order = server.sessions[subscriber].outgoing_order
        assert order is not None and len(order) == 0

    run(scenario())


def test_server_async_outgoing_orders_server_side_publishes() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        server.add_extension(SlowGate())
        subscriber = await client(server)
        await one(server, channel="/meta/subscribe", clientId=subscriber, subscription="/s")
        for n in [0, 1, "drop", 2, 3]:
            assert server.publish("/s", n) == 1
        await asyncio.sleep(0.2)
        got = [d.message["data"] for d in server.sessions[subscriber].drain()]
        assert got == [0, 1, 2, 3]

    run(scenario())


def test_async_outgoing_on_a_held_connect_reply() -> None:
    class Tag(Extension):
        async def outgoing(self, session, message):
            await asyncio.sleep(0.01)
            if message["channel"] == "/meta/connect":
                message.setdefault("ext", {})["tagged"] = True
            return True

    async def scenario() -> None:
        server = BayeuxServer()
        server.add_extension(Tag())
        cid = await client(server)
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        await server.handle([connect])  # the first connect is answered at once
        hold = held(await server.handle([connect]))
        _, reply = server.finish_connect(hold)
        assert "ext" not in reply and hold.pending is not None
        await reply_ready(hold)
        assert reply["ext"] == {"tagged": True} and hold.pending is None

    run(scenario())


def test_what_waits_for_an_async_extension_is_bounded() -> None:
    release = asyncio.Event

    class Stuck(Extension):
        def __init__(self, gate: asyncio.Event) -> None:
            self.gate = gate

        async def outgoing(self, session, message):
            if message["channel"] == "/b":
                await self.gate.wait()
            return True

    async def scenario() -> None:
        gate = release()
        server = BayeuxServer(Settings(max_extension_backlog=5))
        subscriber = await client(server)
        server.sessions[subscriber].add_extension(Stuck(gate))
        await one(server, channel="/meta/subscribe", clientId=subscriber, subscription="/b")
        for n in range(20):
            server.publish("/b", n)
        order = server.sessions[subscriber].outgoing_order
        assert order is not None and len(order) == 5
        assert server.stats.dropped["extension-backlog"] == 15
        gate.set()
        await asyncio.sleep(0.01)
        assert [d.message["data"] for d in server.sessions[subscriber].drain()] == list(range(5))

    run(scenario())
