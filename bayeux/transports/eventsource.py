"""The `eventsource` transport as Faye's client uses it: `GET <mount>/<clientId>` with
`Accept: text/event-stream` opens a Server-Sent Events stream that carries the session's
deliveries, while requests (connects included) still travel by long-polling POST."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import tornado.ioloop
import tornado.locks
import tornado.routing
import tornado.web

from .. import codec
from .http_common import allow_origin, origin_refused, redact_for_logs

if TYPE_CHECKING:
    from ..endpoint import Endpoint

PING_SECONDS = 15.0  # a comment line now and then keeps proxies from closing an idle stream


class EventSourceMatches(tornado.routing.PathMatches):
    """Matches the endpoint's sub-paths for GETs that ask for an event stream."""

    def match(self, request: Any) -> dict | None:
        if request.method != "GET" or "text/event-stream" not in request.headers.get("Accept", ""):
            return None
        return super().match(request)


class EventSourceHandler(tornado.web.RequestHandler):
    # Tells the polling transport that this waiter is a delivery stream, not a held connect.
    is_stream = True

    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._done: tornado.locks.Event | None = None
        self._flush_scheduled = False
        self._writing = False

    async def get(self, *args: Any) -> None:
        self.endpoint.start()
        client_id = self.request.path.rstrip("/").rsplit("/", 1)[-1]
        redact_for_logs(self.request)
        if origin_refused(self, self.endpoint):
            self.set_status(403)
            self.finish("origin not allowed\n")
            return
        session = self.endpoint.server.sessions.get(client_id)
        allow_origin(self, self.endpoint)
        if session is None:
            self.set_status(404)
            self.finish("unknown client\n")
            return
        self.session = session
        self._done = tornado.locks.Event()
        self.set_header("Content-Type", "text/event-stream;charset=utf-8")
        self.set_header("Cache-Control", "no-cache, no-store")
        self.write(f"retry: {self.endpoint.settings.timeout}\n\n")
        await self.flush()
        session.attach(self)
        self._flush()  # anything queued before the stream opened
        pinger = tornado.ioloop.PeriodicCallback(self._ping, PING_SECONDS * 1000)
        pinger.start()
        self.endpoint.stream_opened(self)
        try:
            await self._done.wait()
        finally:
            self.endpoint.stream_closed(self)
            pinger.stop()
            session.detach(self)
        if not self._finished:
            self.finish()

    # Waiter, as the core sees it
    def wake(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            tornado.ioloop.IOLoop.current().add_callback(self._flush)

    def wake_after(self, seconds: float) -> None:
        tornado.ioloop.IOLoop.current().call_later(seconds, self.wake)

    def displace(self) -> None:
        self._end()

    def close(self) -> None:
        self._end()

    def finish_draining(self) -> None:
        """Sends what is queued, then ends the stream (the client reconnects elsewhere)."""
        self._flush()
        self._end()

    def _end(self) -> None:
        if self._done is not None:
            self._done.set()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._writing or self._done is None or self._done.is_set() or not self.session.queue:
            return
        deliveries = self.session.drain()
        self.endpoint.server.stats.observe_latency(time.monotonic() - deliveries[0].born)
        items = [d.json for d in deliveries]
        self._send(b"data: " + codec.join_array(items) + b"\n\n")

    def _ping(self) -> None:
        if not self._writing:
            self._send(b":\n\n")

    def _send(self, chunk: bytes) -> None:
        self._writing = True
        self.write(chunk)
        self.flush().add_done_callback(self._sent)

    def _sent(self, future: Any) -> None:
        self._writing = False
        if future.exception() is not None:
            self._end()
        elif self.session.queue:
            self.wake()

    def on_connection_close(self) -> None:
        self._end()
