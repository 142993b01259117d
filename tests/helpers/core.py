"""Driving a BayeuxServer directly, without a transport."""

from __future__ import annotations

import asyncio
from typing import Any

from bayeux import BayeuxServer, ConnectHold, Outcome

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
