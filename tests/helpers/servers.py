"""Servers to test against, and the messages that open a session on them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import tornado.websocket

from bayeux import Settings
from bayeux.testing import ServerThread, free_port, stop_process, wait_for_port

ROOT = Path(__file__).resolve().parent.parent.parent


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


@contextmanager
def example_under_uvicorn(app: str) -> Iterator[str]:
    """An example application (`"examples.django.app:app"`) under uvicorn in a process of its
    own, on a free loopback port: its base URL, `http://127.0.0.1:PORT`."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)
