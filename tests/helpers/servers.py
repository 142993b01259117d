"""Servers to test against, and the messages that open a session on them."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import tornado.websocket

from bayeux import Settings
from bayeux.testing import ServerThread


def handshake_message(*connection_types: str) -> dict[str, Any]:
    """A /meta/handshake offering `connection_types` (long-polling when none is named)."""
    return {
        "channel": "/meta/handshake",
        "version": "1.0",
        "supportedConnectionTypes": list(connection_types or ("long-polling",)),
    }


HANDSHAKE = handshake_message("long-polling")


class Served(Protocol):
    @property
    def url(self) -> str: ...


def ws_url(server: Served) -> str:
    """The endpoint's URL for WebSocket clients."""
    return server.url.replace("http://", "ws://")


def serve(*, embedded: bool | None = None, **settings: object) -> ServerThread:
    """A server on a background thread, started, with short timeouts (a connect held 2 s,
    sessions expiring 1 s after, swept every 0.1 s) unless `settings` say otherwise."""
    base: dict[str, Any] = dict(timeout=2000, max_interval=1000, sweep_period=100)
    base.update(settings)
    return ServerThread(Settings(**base), embedded=embedded).start()


async def next_frame(
    ws: tornado.websocket.WebSocketClientConnection, timeout: float | None = None
) -> str | bytes:
    """The next message on `ws` (within `timeout` seconds); fails if the server closed it."""
    frame = await asyncio.wait_for(ws.read_message(), timeout)
    assert frame is not None, "the server closed the WebSocket"
    return frame
