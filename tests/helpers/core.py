"""Driving a BayeuxServer directly, without a transport."""

from __future__ import annotations

import asyncio

from bayeux import BayeuxServer

HS = {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}


async def one(server: BayeuxServer, **message) -> dict:  # type: ignore[no-untyped-def]
    outcome = await server.handle([message])
    (reply,) = outcome.replies
    return reply


async def client(server: BayeuxServer, **fields) -> str:  # type: ignore[no-untyped-def]
    reply = await one(server, **HS, **fields)
    assert reply["successful"] is True, reply
    return reply["clientId"]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
