"""bayeux.client's replay extension against a replay deployment (`--replay-channels`): replay
ids kept per channel in a store, -2 and -1, and the fallback when an id is refused."""

from __future__ import annotations

import asyncio
from typing import Any

from bayeux import Settings
from bayeux.client import (
    ALL_RETAINED,
    BayeuxError,
    Client,
    MemoryReplayStore,
    ReplayExtension,
)
from bayeux.testing import ServerThread

SETTINGS = Settings(timeout=1500, replay_channels=("/event/**",))


async def collect(url: str, replay: ReplayExtension, channel: str, settle: float = 0.3) -> list:
    got: list[dict[str, Any]] = []
    async with Client(url, extensions=[replay]) as client:
        await client.subscribe(channel, got.append)
        await asyncio.sleep(settle)
    return [m["data"]["payload"]["n"] for m in got]


def test_replay_from_the_store_after_a_restart_of_the_client() -> None:
    with ServerThread(SETTINGS) as server:

        def publish(*numbers: int) -> None:
            for n in numbers:
                server.call(server.endpoint.server.publish, "/event/a", {"n": n})

        async def scenario() -> None:
            publish(0, 1, 2)
            store = MemoryReplayStore()
            everything = ReplayExtension(store, default=ALL_RETAINED)
            assert await collect(server.url, everything, "/event/a") == [0, 1, 2]
            last = store.get("/event/a")
            assert isinstance(last, int) and last > 0
            publish(3, 4)
            # A new client with the same store: only what came after the last one seen.
            assert await collect(server.url, ReplayExtension(store), "/event/a") == [3, 4]
            # A fresh store with the default -1: nothing retained, only what comes next.
            assert await collect(server.url, ReplayExtension(), "/event/a") == []

        asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_refused_replay_id_falls_back_once_or_raises() -> None:
    with ServerThread(SETTINGS) as server:

        async def scenario() -> None:
            server.call(server.endpoint.server.publish, "/event/b", {"n": 0})
            store = MemoryReplayStore({"/event/b": 123})  # never issued by this server
            got = await collect(
                server.url, ReplayExtension(store, fallback=ALL_RETAINED), "/event/b"
            )
            assert got == [0] and store.get("/event/b") != 123
            strict = ReplayExtension(MemoryReplayStore({"/event/b": 123}), fallback=None)
            async with Client(server.url, extensions=[strict]) as client:
                try:
                    await client.subscribe("/event/b", print)
                except BayeuxError as refused:
                    assert "replayId {123}" in refused.error
                else:
                    raise AssertionError("a refused replay id was accepted")

        asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_store_follows_each_channel() -> None:
    store = MemoryReplayStore()
    replay = ReplayExtension(store)
    delivered = {"channel": "/event/x", "data": {"event": {"replayId": 7}, "payload": {}}}
    replay.incoming(delivered)
    replay.incoming({"channel": "/event/y", "data": {"event": {"replayId": 9}}})
    replay.incoming({"channel": "/event/z", "data": "no event"})
    assert store.ids == {"/event/x": 7, "/event/y": 9}
    subscribe = replay.outgoing({"channel": "/meta/subscribe", "subscription": "/event/x"})
    assert subscribe is not None and subscribe["ext"]["replay"] == {"/event/x": 7}
    handshake = replay.outgoing({"channel": "/meta/handshake"})
    assert handshake is not None and handshake["ext"]["replay"] is True
