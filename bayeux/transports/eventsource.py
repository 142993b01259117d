"""The `eventsource` transport as Faye's client uses it: `GET <mount>/<clientId>` with
`Accept: text/event-stream` opens a Server-Sent Events stream that carries the session's
deliveries, while requests (connects included) still travel by long-polling POST.

`EventStream` is the transport's semantics; the connection that carries it supplies a
`StreamSink` (the standalone connection layer writes chunks, the Tornado adapter a
RequestHandler's flushes)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from ..core import codec
from ..core.engine import EngineUnavailable, ForeignBrowser
from ..core.peer import Peer
from ..core.session import ServerSession
from .context import Context
from .http import HttpRequest, HttpResponse, cors_headers, origin_refused, refusal

PING_SECONDS = 15.0  # a comment line now and then keeps proxies from closing an idle stream
EVENT_STREAM_TYPE = "text/event-stream;charset=utf-8"


class StreamSink(Protocol):
    def write(self, chunk: bytes) -> asyncio.Future[None] | None:
        """Writes a chunk of the stream; None when written at once, else a future resolved
        when written (failed if the connection broke)."""


async def open_stream(
    context: Context, request: HttpRequest
) -> tuple[HttpResponse, ServerSession | None]:
    """The response head for an EventSource request, and the session it streams (None with a
    refusal: another origin, or an unknown client). With an engine, a session another process
    serves is taken over: the stream is where its deliveries go."""
    context.start()
    if origin_refused(request, context, readable=True):
        return refusal(403, "origin not allowed"), None
    client_id = request.path.rstrip("/").rsplit("/", 1)[-1]
    server = context.server
    session = server.sessions.get(client_id)
    cors = cors_headers(request, context)
    request.identify_browser(context.settings.browser_cookie)
    stream_request = request.context("eventsource")
    if session is None:
        try:
            session = await server.take_over(client_id, None, stream_request)
        except EngineUnavailable:
            return refusal(503, "session store unavailable", cors), None
        except ForeignBrowser:
            session = None  # bound to another browser: it stays where it is
    if session is None or server.foreign(session, Peer(), stream_request) is not None:
        # Another browser's stream would be handed the session's messages.
        return refusal(404, "unknown client", cors), None
    session.context = stream_request
    headers = [
        *cors,
        ("Content-Type", EVENT_STREAM_TYPE),
        ("Cache-Control", "no-cache, no-store"),
    ]
    return HttpResponse(200, headers, f"retry: {context.settings.timeout}\n\n".encode()), session


class EventStream:
    """Carries one session's deliveries as `data:` events until the session ends, another
    connection takes it over, the client leaves, or the server drains.
    As the core sees it, a `Waiter` (see core.session)."""

    # A delivery stream, not a held connect (core.session.Waiter).
    is_stream = True

    def __init__(self, context: Context, session: ServerSession, sink: StreamSink) -> None:
        self.context = context
        self.session = session
        self.sink = sink
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_scheduled = False
        self._writing = False
        self._pinger: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Called once the response head is written."""
        self.session.attach(self)
        self._flush()  # anything queued before the stream opened
        self._pinger = asyncio.get_running_loop().call_later(PING_SECONDS, self._ping)
        self.context.stream_opened(self)

    async def run(self) -> None:
        """Starts the stream and returns when it has ended."""
        self.start()
        try:
            await self.done
        finally:
            self.stop()

    def stop(self) -> None:
        self.context.stream_closed(self)
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        self.session.detach(self)
        self._end()

    # Waiter, as the core sees it
    def wake(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def wake_after(self, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self.wake)

    def displace(self) -> None:
        self._end()

    def close(self) -> None:
        self._end()

    def finish_draining(self) -> None:
        """Sends what is queued, then ends the stream (the client reconnects elsewhere)."""
        self._flush()
        self._end()

    def connection_lost(self) -> None:
        self._end()

    def _end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._writing or self.done.done():
            return
        deliveries = self.session.sendable(self.context.settings.max_message_size)
        if not deliveries:
            return
        self.context.server.stats.observe_latency(time.monotonic() - deliveries[0].born)
        self._send(b"data: " + codec.join_array([d.json for d in deliveries]) + b"\n\n")

    def _ping(self) -> None:
        if self.done.done():
            return
        self._pinger = asyncio.get_running_loop().call_later(PING_SECONDS, self._ping)
        if not self._writing:
            self._send(b":\n\n")

    def _send(self, chunk: bytes) -> None:
        written = self.sink.write(chunk)
        if written is None:
            self._sent(None)
        else:
            self._writing = True
            written.add_done_callback(self._sent)

    def _sent(self, future: asyncio.Future[None] | None) -> None:
        self._writing = False
        if future is not None and (future.cancelled() or future.exception() is not None):
            self._end()
        elif self.session.queue and not self.session.connect_delivery_only:
            self.wake()
