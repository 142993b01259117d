"""bayeux.client, this project's own Python client, against every host of this server on each
transport, and against the peers: Faye (WebSocket) and cometd-nodejs-server (which offers no
WebSocket, so the client falls back to long-polling)."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from bayeux.client import Client
from bayeux.testing import free_port, stop_process, wait_for_port

from .conftest import INTEROP, node_executable


async def round_trip(url: str, transports: list[str]) -> tuple[str, list[dict], list[dict]]:
    exact: list[dict] = []
    wild: list[dict] = []
    async with (
        Client(url, transports=transports) as subscriber,
        Client(url, transports=transports) as publisher,
    ):
        assert subscriber.transport is not None
        await subscriber.subscribe("/interop/py/chat", exact.append)
        await subscriber.subscribe("/interop/py/wild/*", wild.append)
        for i in range(20):
            await publisher.publish("/interop/py/chat", {"i": i})
        await publisher.publish("/interop/py/wild/x", {"i": 20})
        deadline = time.monotonic() + 10
        while (len(exact) < 20 or not wild) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return subscriber.transport.name, exact, wild


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
def test_python_client_on_every_host(bayeux_url: str, transport: str) -> None:
    used, exact, wild = asyncio.run(asyncio.wait_for(round_trip(bayeux_url, [transport]), 30))
    assert used == transport
    assert [m["data"]["i"] for m in exact] == list(range(20))
    assert [m["channel"] for m in wild] == ["/interop/py/wild/x"]
    assert all("clientId" not in m for m in exact)


PEERS = {
    # name: (script, its arguments after the port, the transport the client ends up on)
    "faye": ("faye_server.cjs", ["3"], "websocket"),
    "cometd-nodejs-server": ("cometd_nodejs_server.cjs", ["3000", "10000"], "long-polling"),
}


@pytest.mark.parametrize("peer", PEERS)
def test_python_client_against_the_peers(peer: str) -> None:
    script, arguments, expected = PEERS[peer]
    port = free_port()
    process = subprocess.Popen(
        [node_executable(), str(INTEROP / "peers" / script), str(port), *arguments],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}/cometd"
        used, exact, wild = asyncio.run(
            asyncio.wait_for(round_trip(url, ["websocket", "long-polling"]), 30)
        )
        assert used == expected
        assert [m["data"]["i"] for m in exact] == list(range(20))
        assert [m["channel"] for m in wild] == ["/interop/py/wild/x"]
        used, exact, _ = asyncio.run(asyncio.wait_for(round_trip(url, ["long-polling"]), 30))
        assert used == "long-polling" and len(exact) == 20
    finally:
        stop_process(process)
