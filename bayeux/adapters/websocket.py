"""The websocket transport as a Tornado WebSocketHandler (see transports/websocket.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.iostream
import tornado.routing
import tornado.websocket

from ..transports.context import Context
from ..transports.http import wants_websocket
from ..transports.websocket import BayeuxWebSocket, select_subprotocol, upgrade_context
from ..transports.wsframes import data_frames
from .requests import request_from


class UpgradeMatches(tornado.routing.PathMatches):
    """Matches the endpoint's path only for WebSocket upgrade requests."""

    def match(self, request: Any) -> dict[str, Any] | None:
        if not wants_websocket({"upgrade": request.headers.get("Upgrade", "")}):
            return None
        return super().match(request)


class WebSocketHandler(tornado.websocket.WebSocketHandler):
    """Tornado reads and validates frames; the transport decides what they mean and what to
    send, through this handler as its `FrameSink`."""

    def initialize(self, context: Context) -> None:
        self.context = context
        self._subprotocol: str | None = None
        self.transport: BayeuxWebSocket | None = None

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        self._subprotocol = select_subprotocol(subprotocols)
        return self._subprotocol

    @property
    def max_message_size(self) -> int:
        # Tornado closes with 1009 (message too big) above this.
        return self.context.settings.max_message_size

    @property
    def ping_interval(self) -> float | None:
        return self.context.settings.ws_ping_interval_seconds or None

    @property
    def ping_timeout(self) -> float | None:
        # A peer that has not answered a ping by the next one is gone (half-open).
        return self.ping_interval

    def check_origin(self, origin: str) -> bool:
        return self.context.origin_allowed(origin, self.request.host)

    def open(self, *args: Any) -> None:
        self.context.connection_opened()
        self.set_nodelay(True)
        self.transport = BayeuxWebSocket(
            self.context,
            self,
            remote_ip=self.request.remote_ip,
            subprotocol=self._subprotocol,
            request=upgrade_context(
                request_from(self.request, handler=self), self.context.settings.browser_cookie
            ),
        )
        self.transport.opened()

    async def on_message(self, message: str | bytes) -> None:
        # Tornado reads the next frame only once this returns.
        if self.transport is not None:
            await self.transport.received(message)

    def on_close(self) -> None:
        if self.transport is not None:
            self.context.connection_closed()
            self.transport.closed()
            self.transport = None

    # ------------------------------------------------------------------------ FrameSink

    def send_frames(self, payloads: list[bytes], binary: bool) -> asyncio.Future[None] | None:
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return None
        if self.get_compression_options() is not None:
            # permessage-deflate needs Tornado's own framing (slower, but compressed).
            futures = [self.write_message(p, binary=binary) for p in payloads]
            return futures[-1] if futures else None
        # Frame bytes written straight to the stream: Tornado's write_message would add a
        # coroutine, a task and a callback per frame (slower: benchmarks/fanout.py).
        stream = connection.stream
        if stream is None:
            return None
        try:
            written = _write_now(stream, data_frames(payloads, binary))
        except tornado.iostream.StreamClosedError:
            return None
        if written is not None and not stream.writing() and written.done():
            return None
        return written

    def abort(self) -> None:
        connection = self.ws_connection
        stream = connection.stream if connection is not None else None
        if stream is not None:
            stream.close()


def _write_now(stream: tornado.iostream.IOStream, data: bytes) -> asyncio.Future[None] | None:
    """Writes `data`; None when the socket took all of it at once, else a future resolved once
    it has been (the standalone server's TransportStream.write_now does the same there).

    With nothing buffered, a plain TCP stream's socket is sent to directly: IOStream.write would
    make a future and bookkeeping per write for the same single send() (a slower fan-out:
    benchmarks/fanout.py). Whatever the socket does not take (or any error) goes
    through IOStream.write, which keeps its usual semantics."""
    if type(stream) is tornado.iostream.IOStream and not stream.writing() and not stream.closed():
        try:
            sent = stream.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # let IOStream see the error and close the stream its own way
        if sent == len(data):
            return None
        data = data[sent:]
    return stream.write(data)
