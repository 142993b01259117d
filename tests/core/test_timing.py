"""A session's own timeout, interval and maxInterval (BayeuxServer.set_timing), as CometD's
ServerSession has them: advised to the client, used to hold its connects and to expire it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bayeux import BayeuxServer, SecurityPolicy, ServerSession, Settings
from bayeux.testing import ManualClock as Clock

from ..helpers.core import HS, held


class MobilePolicy(SecurityPolicy):
    """Gives clients that say they are mobile a longer poll and more time away."""

    server: BayeuxServer

    def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        if (message.get("ext") or {}).get("mobile"):
            self.server.set_timing(session, timeout=45000, interval=2000, max_interval=90000)
        return True


def handle(server: BayeuxServer, **message: Any) -> Any:
    return asyncio.run(server.handle([message]))


def test_a_policy_gives_a_session_its_own_timing_at_handshake() -> None:
    clock = Clock()
    policy = MobilePolicy()
    server = policy.server = BayeuxServer(
        Settings(timeout=20000, interval=0, max_interval=5000), clock=clock, policy=policy
    )
    (mobile,) = handle(server, **HS, ext={"mobile": True}).replies
    (desk,) = handle(server, **HS).replies
    assert mobile["advice"] == {
        "reconnect": "retry",
        "timeout": 45000,
        "interval": 2000,
        "maxInterval": 90000,
    }
    assert desk["advice"]["timeout"] == 20000 and desk["advice"]["maxInterval"] == 5000
    session = server.sessions[mobile["clientId"]]
    connect = {"channel": "/meta/connect", "clientId": session.id, "connectionType": "long-polling"}
    handle(server, **connect)  # the first connect is answered at once
    hold = held(handle(server, **connect))
    assert hold.timeout == 45 and hold.reply["advice"]["timeout"] == 45000
    server.finish_connect(hold)
    # maxInterval after the advised interval: alive at 91.9 s, gone at 92.1 s.
    clock.now += 91.9
    server.sweep()
    assert session.id in server.sessions and desk["clientId"] not in server.sessions
    clock.now += 0.2
    assert server.sweep() == [session]


def test_timing_set_later_is_advised_on_the_next_connect_and_checked() -> None:
    server = BayeuxServer(Settings(timeout=20000))
    (reply,) = handle(server, **HS).replies
    session = server.sessions[reply["clientId"]]
    server.set_timing(session, timeout=1000)
    connect = {"channel": "/meta/connect", "clientId": session.id, "connectionType": "long-polling"}
    first = held(handle(server, **connect))
    assert first.timeout == 0  # the first connect is answered at once
    assert first.reply["advice"]["timeout"] == 1000
    assert first.reply["advice"]["maxInterval"] == 10000
    server.set_timing(session)  # back to the server's
    assert held(handle(server, **connect)).timeout == 20
    for bad in (-1, 2**31, 1.5, True):
        with pytest.raises(ValueError):
            server.set_timing(session, interval=bad)  # type: ignore[arg-type]
