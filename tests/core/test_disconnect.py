"""BayeuxServer.disconnect: the server tells a client to stop (CometD's
ServerSession.disconnect()), unlike remove_session, after which the client handshakes again."""

from __future__ import annotations

import asyncio
from typing import Any

from bayeux import BayeuxServer, Ended, Settings
from bayeux.testing import ManualClock as Clock

from ..helpers.core import HS, held


def handle(server: BayeuxServer, **message: Any) -> Any:
    return asyncio.run(server.handle([message]))


def connect(server: BayeuxServer, client_id: str) -> Any:
    return handle(
        server, channel="/meta/connect", clientId=client_id, connectionType="long-polling"
    )


def test_a_held_connect_is_told_to_stop_and_listeners_get_the_reason() -> None:
    server = BayeuxServer(Settings(timeout=20000))
    reasons: list[Ended] = []
    server.on_session_removed(lambda session, why: reasons.append(why))
    (reply,) = handle(server, **HS).replies
    client_id = reply["clientId"]
    connect(server, client_id)  # the first connect, answered at once
    hold = held(connect(server, client_id))
    server.disconnect(server.sessions[client_id])
    deliveries, answer = server.finish_connect(hold)
    assert answer["advice"]["reconnect"] == "none" and answer["successful"] is True
    assert deliveries == [] and reasons == [Ended.KICKED]


def test_the_next_connect_is_told_to_stop_within_max_interval_then_forgotten() -> None:
    clock = Clock()
    server = BayeuxServer(Settings(timeout=20000, interval=0, max_interval=5000), clock=clock)
    kicked = handle(server, **HS).replies[0]["clientId"]
    removed = handle(server, **HS).replies[0]["clientId"]
    server.disconnect(server.sessions[kicked])
    server.remove_session(server.sessions[removed])
    (stop,) = connect(server, kicked).replies
    assert stop["successful"] is False and stop["advice"]["reconnect"] == "none"
    (again,) = connect(server, removed).replies  # removed, not stopped: handshake again
    assert again["advice"]["reconnect"] == "handshake"
    clock.now += 5.1
    server.sweep()
    (later,) = connect(server, kicked).replies
    assert later["advice"]["reconnect"] == "handshake"


def test_what_is_remembered_of_stopped_sessions_is_bounded() -> None:
    server = BayeuxServer(Settings(max_sessions=3))
    for _ in range(5):
        (reply,) = handle(server, **HS).replies
        server.disconnect(server.sessions[reply["clientId"]])
    assert len(server._stopped) == 3
