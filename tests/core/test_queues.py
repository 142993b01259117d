"""Queue limits and their policies, lazy channels, settings checks, and data that cannot be
encoded refused where it enters."""

from __future__ import annotations

import pytest

from bayeux import (
    BayeuxServer,
    Ended,
    Settings,
)

from ..helpers.core import client, one, run

# ----------------------------------------------------------------------- queue limit, lazy


@pytest.mark.parametrize(
    ("policy", "expected", "alive"),
    [("drop-oldest", [2, 3, 4], True), ("drop-newest", [0, 1, 2], True), ("disconnect", [], False)],
)
def test_max_queue_policies(policy: str, expected: list, alive: bool) -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_queue=3, queue_full_policy=policy))
        removed = []
        server.on_session_removed(lambda s, why: removed.append(why))
        sub, pub = await client(server), await client(server)
        session = server.sessions[sub]
        await one(server, channel="/meta/subscribe", clientId=sub, subscription="/q")
        for i in range(5):
            await one(server, channel="/q", clientId=pub, data=i)
        assert [d.message["data"] for d in session.queue] == expected
        assert (sub in server.sessions) is alive
        assert removed == ([] if alive else [Ended.QUEUE_FULL])

    run(scenario())


class Waiter:
    is_stream = False

    def __init__(self) -> None:
        self.events: list = []

    def wake(self) -> None:
        self.events.append("wake")

    def wake_after(self, seconds: float) -> None:
        self.events.append(("after", seconds))

    def displace(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_lazy_channels_wait_for_company() -> None:
    async def scenario() -> None:
        server = BayeuxServer(Settings(max_lazy_timeout=2500))
        server.set_lazy("/ticks/**")
        sub, pub = await client(server), await client(server)
        session = server.sessions[sub]
        await one(server, channel="/meta/subscribe", clientId=sub, subscription="/**")
        waiter = Waiter()
        session.attach(waiter)
        await one(server, channel="/ticks/a", clientId=pub, data=1)
        await one(server, channel="/ticks/b", clientId=pub, data=2)
        assert waiter.events == [("after", 2.5)]
        await one(server, channel="/urgent", clientId=pub, data=3)
        assert waiter.events == [("after", 2.5), "wake"]

    run(scenario())


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        Settings(max_queue=0)
    with pytest.raises(ValueError):
        Settings(queue_full_policy="explode")


def test_unencodable_data_is_refused_where_it_enters() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        sub = await client(server)
        await one(server, channel="/meta/subscribe", clientId=sub, subscription="/x")
        session = server.sessions[sub]
        with pytest.raises(ValueError):
            server.publish("/x", {"when": object()})
        with pytest.raises(ValueError):
            server.deliver(session, "/x", {1, 2})
        assert not session.queue  # nothing half-delivered

        server.add_service("/service/bad", lambda request: {"a set": {1, 2}})
        await one(server, channel="/service/bad", clientId=sub, data=None, id="q")
        (answer,) = session.drain()
        assert answer.message["successful"] is False
        assert answer.message["error"] == "500:/service/bad:Service reply not representable"
        assert answer.json  # what is queued is always encodable

    run(scenario())
