"""Driving a BayeuxServer directly, without a transport."""

from __future__ import annotations

import asyncio
from typing import Any

from bayeux import BayeuxServer, ConnectHold, Outcome
from bayeux.core.session import ServerSession

HS: dict[str, Any] = {
    "channel": "/meta/handshake",
    "version": "1.0",
    "supportedConnectionTypes": ["long-polling"],
}


async def one(server: BayeuxServer, **message) -> dict:
    outcome = await server.handle([message])
    (reply,) = outcome.replies
    return reply


async def client(server: BayeuxServer, **fields) -> str:
    reply = await one(server, **HS, **fields)
    assert reply["successful"] is True, reply
    return reply["clientId"]


def run(coro):
    return asyncio.run(coro)


def held(outcome: Outcome) -> ConnectHold:
    """The batch's held connect (the test expects one)."""
    assert outcome.connect is not None, outcome.replies
    return outcome.connect


class Recorder:
    """A Waiter that records how the core wakes it."""

    is_stream = False

    def __init__(self) -> None:
        self.events: list[tuple[str, float | None]] = []

    def wake(self) -> None:
        self.events.append(("wake", None))

    def wake_after(self, seconds: float) -> None:
        self.events.append(("wake_after", seconds))

    def displace(self) -> None:
        self.events.append(("displace", None))

    def close(self) -> None:
        self.events.append(("close", None))


def watched(server: BayeuxServer, pattern: str) -> tuple[ServerSession, Recorder]:
    session = server.create_session()
    server.subscribe(session, pattern)
    waiter = Recorder()
    session.attach(waiter)
    return session, waiter
