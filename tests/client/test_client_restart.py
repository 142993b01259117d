"""bayeux.client across a server restart: the server stopped and started again on the same
port (every session forgotten) under a client publishing every 100 ms. Every publish either
reached the server (a message listener on it records each one) or raised to the caller;
publishes made while the server was away are held and go out on the new session; the
subscriber's subscription is restored and it receives what is published after."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from bayeux import Endpoint, Settings
from bayeux.client import BayeuxError, Client, State, SyncClient
from bayeux.testing import free_port
from tests.helpers.aio import until
from tests.helpers.hostile import FixedPortServer

SETTINGS = Settings(timeout=1500, max_interval=3000, sweep_period=100)


class Recorder:
    """Every message published to /restart/** on any of the servers, by data."""

    def __init__(self) -> None:
        self.data: set[int] = set()
        self.lock = threading.Lock()

    def listen(self, session: Any, channel: str, message: dict[str, Any]) -> None:
        with self.lock:
            self.data.add(message["data"])

    def server(self, port: int) -> FixedPortServer:
        endpoint = Endpoint(SETTINGS)
        endpoint.server.add_message_listener("/restart/**", self.listen)
        return FixedPortServer(port, SETTINGS, endpoint=endpoint)


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
def test_a_restarted_server_loses_no_publish_that_was_not_reported(transport: str) -> None:
    port = free_port()
    recorder = Recorder()
    server = recorder.server(port).start()

    async def scenario() -> None:
        nonlocal server
        options: dict[str, Any] = {"transports": [transport], "backoff": 0.1, "max_backoff": 1}
        moves: list[tuple[State, State]] = []
        got: list[int] = []
        publisher, subscriber = Client(server.url, **options), Client(server.url, **options)
        publisher.on_state(lambda old, new: moves.append((old, new)))
        outcomes: dict[int, str] = {}
        down_at: list[int] = []  # the publishes made while the server was away

        async def publish(n: int) -> None:
            try:
                await publisher.publish("/restart/x", n)
                outcomes[n] = "ok"
            except (BayeuxError, TimeoutError) as error:
                outcomes[n] = type(error).__name__

        async with publisher, subscriber:
            await subscriber.subscribe("/restart/x", lambda m: got.append(m["data"]))
            sends = []
            for n in range(60):
                if n == 10:
                    await asyncio.to_thread(server.stop)
                if 10 <= n < 20:
                    down_at.append(n)
                if n == 20:
                    server = await asyncio.to_thread(recorder.server(port).start)
                sends.append(asyncio.ensure_future(publish(n)))
                await asyncio.sleep(0.1)
            await asyncio.wait_for(asyncio.gather(*sends), 60)
            accepted = {n for n, outcome in outcomes.items() if outcome == "ok"}
            # Nothing lost without a word: each publish the caller was told succeeded reached
            # a server.
            assert accepted <= recorder.data, sorted(accepted - recorder.data)
            # Held while the server was away, sent on the new session (not all refused).
            assert accepted & set(down_at), [(n, outcomes[n]) for n in range(8, 30)]
            assert accepted >= set(range(50, 60)), outcomes  # the new session is up
            assert (State.REHANDSHAKING, State.CONNECTED) in moves
            # The subscriber's subscription was restored on the new server.
            await until(lambda: 59 in got, within=10)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 120))
    finally:
        server.stop()


def test_the_sync_client_reports_states_across_a_restart() -> None:
    port = free_port()
    recorder = Recorder()
    server = recorder.server(port).start()
    moves: list[tuple[State, State]] = []
    try:
        client = SyncClient(server.url, transports=["long-polling"], backoff=0.1, max_backoff=1)
        client.on_state(lambda old, new: moves.append((old, new)))
        with client:
            assert client.state == State.CONNECTED
            client.publish("/restart/sync", 1)
            server.stop()
            server = recorder.server(port).start()
            # Held until the new session, then sent there (or retried once on a 402).
            assert client.publish("/restart/sync", 2)["successful"] is True
            assert {1, 2} <= recorder.data
        assert client.state in (State.CLOSED,)  # (mypy narrows ==)
        assert (State.REHANDSHAKING, State.CONNECTED) in moves
    finally:
        server.stop()
