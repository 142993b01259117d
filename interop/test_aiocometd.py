"""aiocometd-ng (Python asyncio client): handshake over long-polling, then its chosen transport."""

from __future__ import annotations

import asyncio

import pytest
from aiocometd_ng import Client, ConnectionType


async def _scenario(url: str, connection_type: ConnectionType) -> list[dict]:
    async with (
        Client(url, connection_types=[connection_type]) as subscriber,
        Client(url, connection_types=[connection_type]) as publisher,
    ):
        await subscriber.subscribe("/interop/aio/chat")
        await subscriber.subscribe("/interop/aio/wild/*")
        for i in range(20):
            await publisher.publish("/interop/aio/chat", {"i": i})
        await publisher.publish("/interop/aio/wild/x", {"i": 20})
        received = []
        for _ in range(21):
            received.append(await asyncio.wait_for(subscriber.receive(), 10))
        await subscriber.unsubscribe("/interop/aio/chat")
        return received


@pytest.mark.parametrize("connection_type", [ConnectionType.LONG_POLLING, ConnectionType.WEBSOCKET])
def test_aiocometd_publish_subscribe(bayeux_url: str, connection_type: ConnectionType) -> None:
    received = asyncio.run(_scenario(bayeux_url, connection_type))
    assert [m["data"]["i"] for m in received] == list(range(21))
    assert received[0]["channel"] == "/interop/aio/chat"
    assert received[-1]["channel"] == "/interop/aio/wild/x"
    assert all("clientId" not in m for m in received)
