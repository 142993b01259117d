"""The listener's clock looks at a connection when its deadline falls due, not at every tick:
with tens of thousands of idle WebSockets, each tick visited every one of them (issue 34)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bayeux.connection.clock import Clock
from bayeux.connection.websocket import WebSocketConnection

from ..helpers.rawws import RawWebSocket
from ..helpers.servers import handshake_message, serve, ws_url


class Entry:
    def __init__(self) -> None:
        self.clock_slot = 0


def test_a_connection_is_due_only_once_its_deadline_has_passed() -> None:
    clock = Clock(0.5)
    soon, late = Entry(), Entry()
    clock.at(soon, 10.2)
    clock.at(late, 40.0)
    assert clock.due(10.4) == []  # within the deadline's slot: not yet
    assert clock.due(11.0) == [soon]
    assert clock.due(11.0) == []  # taken out: once
    assert soon.clock_slot == 0
    assert clock.due(39.9) == []
    assert clock.due(40.6) == [late]
    assert clock.empty()


def test_a_later_deadline_leaves_the_entry_and_an_earlier_one_moves_it() -> None:
    clock = Clock(1.0)
    entry = Entry()
    clock.at(entry, 5.0)
    clock.at(entry, 20.0)  # later: stays in its slot, says its deadline when looked at
    assert len(clock) == 1
    assert clock.due(6.5) == [entry]
    clock.at(entry, 20.0)
    clock.at(entry, 8.0)  # earlier: moves; the slot left behind passes it over
    assert clock.due(9.5) == [entry]
    assert clock.due(25.0) == []


def test_a_tick_looks_at_no_idle_websocket_before_its_ping_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_at: list[Any] = []
    real = WebSocketConnection.tick

    def counting(self: WebSocketConnection, now: float) -> float:
        looked_at.append(self)
        return real(self, now)

    monkeypatch.setattr(WebSocketConnection, "tick", counting)
    # A tick every 100 ms (half the idle timeout); pings a minute apart.
    with serve(embedded=False, idle_timeout=200, ws_ping_interval=60_000) as server:
        sockets = []
        for _ in range(20):
            ws = RawWebSocket(ws_url(server))
            ws.send([handshake_message("websocket")])
            assert ws.read()[0]["successful"] is True
            sockets.append(ws)
        time.sleep(1.0)  # ten ticks
        assert server.call(lambda: server.endpoint.connections) == 20
        assert looked_at == []  # the old clock looked at each of them at each tick: 200
        for ws in sockets:
            ws.sock.close()
