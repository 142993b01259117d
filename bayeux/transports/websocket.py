"""The `websocket` transport: Bayeux message arrays in text frames, both ways.

Replies go out as soon as a frame's messages are handled; deliveries go out as soon as they are
queued (a held `/meta/connect` is answered at its timeout, as CometD does over WebSocket). While
one frame is being written, newly queued messages wait in the session queue and leave together in
the next frame: a slow reader holds back only its own messages, never the publisher or others.
Replies wait too, and the socket's next frame is not read until they are written: a client that
sends without reading stops being read, instead of growing the server's write buffer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

import tornado.ioloop
import tornado.iostream
import tornado.routing
import tornado.websocket

from .. import codec
from ..core.limits import Peer
from ..core.message import Delivery, ProtocolError, batch_from
from ..core.server import ConnectHold
from ..core.session import ServerSession

if TYPE_CHECKING:
    from ..endpoint import Endpoint

log = logging.getLogger("bayeux.websocket")

CLOSE_INVALID_PAYLOAD = 1007  # not JSON, or not Bayeux messages
CLOSE_UNSUPPORTED_DATA = 1003  # a binary frame without a binary subprotocol
# Binary frames carrying msgpack arrays of the same Bayeux messages; JSON text frames otherwise.
MSGPACK_SUBPROTOCOL = "bayeux-msgpack"


class _Flusher:
    """Flushes every socket that has messages waiting, once per loop turn, with one plain
    call_soon (Tornado's add_callback is thread-safe, so it writes to a self-pipe every call)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[WebSocketTransport] = []

    def add(self, socket: WebSocketTransport) -> None:
        if not self.pending:
            self.loop.call_soon(self.run)
        self.pending.append(socket)

    def run(self) -> None:
        pending, self.pending = self.pending, []
        now = time.monotonic()  # one clock read for every socket's latency
        for socket in pending:
            try:
                socket._flush(now)
            except Exception:
                # One socket's failure must not leave the others waiting for a flush that
                # never comes: it is dropped, and the rest are flushed.
                log.exception("flushing a WebSocket failed; closing it")
                socket.abort()


_FLUSHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher() -> _Flusher:
    loop = asyncio.get_running_loop()
    flusher = _FLUSHERS.get(loop)
    if flusher is None:
        flusher = _FLUSHERS[loop] = _Flusher(loop)
    return flusher


class UpgradeMatches(tornado.routing.PathMatches):
    """Matches the endpoint's path only for WebSocket upgrade requests."""

    def match(self, request: Any) -> dict | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None
        return super().match(request)


class _SessionLink:
    """The `Waiter` tying one session to one WebSocket."""

    __slots__ = ("socket", "session", "hold", "timer")

    def __init__(self, socket: WebSocketTransport, session: ServerSession) -> None:
        self.socket = socket
        self.session = session
        self.hold: ConnectHold | None = None
        self.timer: object | None = None

    def wake(self) -> None:
        if self.socket.endpoint.server.shutting_down:
            # Answer the held connect now, with the advice to come back later.
            if self.hold is not None:
                self.socket.schedule_release(self)
        elif self.session.connect_delivery_only:
            # Ack sessions get messages only with connect replies: answer the held one now.
            if self.hold is not None:
                self.socket.schedule_release(self)
        else:
            self.socket.schedule_flush()

    def wake_after(self, seconds: float) -> None:
        tornado.ioloop.IOLoop.current().call_later(seconds, self.wake)

    def displace(self) -> None:
        # Another connection took the session over: answer our held connect, stop delivering.
        self.socket.unlink(self, displaced=True)

    def close(self) -> None:
        self.socket.unlink(self, displaced=False)


class WebSocketTransport(tornado.websocket.WebSocketHandler):
    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.links: dict[str, _SessionLink] = {}
        self._flush_scheduled = False
        self._writing = False
        self._closed = False
        self._msgpack = False
        # Encoded messages waiting for the frame in flight to be written (replies, released
        # connects); bounded by one batch of replies plus one reply per linked session.
        self._backlog: list[bytes] = []
        self._drained: asyncio.Future[None] | None = None
        self._draining = False
        self.peer = Peer(persistent=True)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        if MSGPACK_SUBPROTOCOL in subprotocols:
            self._msgpack = True
            return MSGPACK_SUBPROTOCOL
        return None

    def _encode(self, message: dict) -> bytes:
        return codec.msgpack_dumps(message) if self._msgpack else codec.dumps(message)

    def _encoded(self, deliveries: list[Delivery]) -> list[bytes]:
        """Each delivery's shared bytes in this socket's format (encoded once per format)."""
        if not self._msgpack:
            return [d.json for d in deliveries]
        out = []
        for delivery in deliveries:
            try:
                out.append(delivery.msgpack)
            except (TypeError, ValueError, OverflowError):
                # Queued before this session read msgpack (the server checks msgpack when it
                # is in use): skip this one message rather than the socket.
                log.error(
                    "a message on %s cannot be sent as msgpack; skipped",
                    delivery.message.get("channel"),
                )
                self.endpoint.server.stats.dropped["not-encodable"] += 1
        return out

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        # Tornado closes with 1009 (message too big) above this.
        return self.endpoint.settings.max_message_size

    @property
    def ping_interval(self) -> float | None:  # type: ignore[override]
        return self.endpoint.settings.ws_ping_interval / 1000 or None

    @property
    def ping_timeout(self) -> float | None:  # type: ignore[override]
        # A peer that has not answered a ping by the next one is gone (half-open).
        return self.ping_interval

    def check_origin(self, origin: str) -> bool:
        return self.endpoint.origin_allowed(origin, self.request.host)

    def open(self, *args: Any) -> None:
        self.endpoint.start()
        self.endpoint.connection_opened()
        self.endpoint.stream_opened(self)
        self.set_nodelay(True)
        self.peer.address = self.request.remote_ip
        self.peer.binary = self._msgpack
        if self._msgpack:
            self.endpoint.server.use_format("msgpack", +1)

    # -------------------------------------------------------------------------- receiving

    async def on_message(self, frame: str | bytes) -> None:
        # Tornado reads the next frame only once this returns: a socket's batches stay in order.
        if isinstance(frame, bytes) and not self._msgpack:
            self.close(CLOSE_UNSUPPORTED_DATA, "binary frames need a binary subprotocol")
            return
        try:
            value = codec.msgpack_loads(frame) if isinstance(frame, bytes) else codec.loads(frame)
        except codec.DecodeError:
            self.close(CLOSE_INVALID_PAYLOAD, "frame is not valid JSON or msgpack")
            return
        if value == []:
            return  # a keep-alive some clients send
        try:
            messages = batch_from(value)
        except ProtocolError as exc:
            self.close(CLOSE_INVALID_PAYLOAD, f"not Bayeux messages: {exc}"[:120])
            return
        server = self.endpoint.server
        outcome = await server.handle(messages, self.peer)
        if self._closed:
            return
        items = [self._encode(reply) for reply in outcome.replies]
        hold = outcome.connect
        if hold is not None:
            items.extend(self._connect(hold))
        if items:
            self._send(items)
        if self._writing and not self._closed:
            # Read nothing more from this client until what it was sent is written.
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    def _connect(self, hold: ConnectHold) -> list[bytes]:
        """Attaches the session to this socket and holds the connect; returns what to send now."""
        session = hold.session
        link = self.links.get(session.id)
        if link is None:
            link = self.links[session.id] = _SessionLink(self, session)
        out: list[bytes] = []
        if link.hold is not None:
            # A new connect replaces the held one, which is answered now (the new one delivers).
            out.extend(self._finish(link, deliver=False))
        session.attach(link)
        server = self.endpoint.server
        link.hold = hold
        if (
            hold.timeout <= 0
            or server.shutting_down
            or session.ended is not None
            or (session.connect_delivery_only and session.queue)
        ):
            out.extend(self._finish(link))
            return out
        link.timer = tornado.ioloop.IOLoop.current().call_later(hold.timeout, self._release, link)
        if session.queue and not session.connect_delivery_only:
            # What is already queued leaves now, before the held connect's eventual reply.
            self.schedule_flush()
        return out

    def schedule_release(self, link: _SessionLink) -> None:
        tornado.ioloop.IOLoop.current().add_callback(self._release, link)

    def _release(self, link: _SessionLink) -> None:
        """Answers the link's held connect now (timeout, or messages for an ack session)."""
        link.timer = None
        if link.hold is not None and not self._closed:
            self._send(self._finish(link))

    def _finish(
        self, link: _SessionLink, *, multiple_clients: bool = False, deliver: bool = True
    ) -> list[bytes]:
        """The encoded deliveries and reply completing the link's held connect."""
        hold, link.hold = link.hold, None
        if link.timer is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(link.timer)
            link.timer = None
        assert hold is not None
        deliveries, reply = self.endpoint.server.finish_connect(
            hold, multiple_clients=multiple_clients, deliver=deliver
        )
        return [*self._encoded(deliveries), self._encode(reply)]

    def unlink(self, link: _SessionLink, *, displaced: bool) -> None:
        """The session left this socket (taken over elsewhere, or ended)."""
        if self.links.get(link.session.id) is link:
            del self.links[link.session.id]
        link.session.detach(link)
        if link.hold is not None and not self._closed:
            self._send(self._finish(link, multiple_clients=displaced, deliver=False))

    # ---------------------------------------------------------------------------- sending

    def schedule_flush(self) -> None:
        # Coalesce everything queued during this loop turn into one frame per socket.
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            _flusher().add(self)

    def _flush(self, now: float | None = None) -> None:
        self._flush_scheduled = False
        if self._writing or self._closed:
            return
        # One frame at a time: what does not fit waits in its session queue, where it counts
        # against max_queue_bytes, rather than in the socket's write buffer.
        budget = self.endpoint.settings.max_message_size
        items: list[bytes] = []
        for link in self.links.values():
            session = link.session
            if session.queue and not session.connect_delivery_only and budget > 0:
                queued = session.queue_bytes
                deliveries = session.take(budget)
                self.endpoint.server.stats.observe_latency(
                    (now or time.monotonic()) - deliveries[0].born
                )
                budget -= queued - session.queue_bytes
                items.extend(self._encoded(deliveries))
        if items:
            self._send(items)
        if not self._writing and self._has_queued():
            self.schedule_flush()  # the socket took it all: the next frame, next loop turn

    def _has_queued(self) -> bool:
        return any(
            link.session.queue and not link.session.connect_delivery_only
            for link in self.links.values()
        )

    def _send(self, items: list[bytes]) -> None:
        if self._closed:
            return
        if self._writing:
            self._backlog.extend(items)
            return
        join = codec.join_msgpack_array if self._msgpack else codec.join_array
        frames = [join(f) for f in _frames(items, self.endpoint.settings.max_message_size)]
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return
        if self.get_compression_options() is not None:
            # permessage-deflate needs Tornado's own framing (slower, but compressed).
            futures = [self.write_message(frame, binary=self._msgpack) for frame in frames]
            if futures:
                self._writing = True
                futures[-1].add_done_callback(self._written)
            return
        # Frame bytes written straight to the stream: Tornado's write_message would add a
        # coroutine, a task and a callback per frame, which measured slower (benchmarks/).
        stream = connection.stream  # type: ignore[attr-defined]
        assert stream is not None
        opcode = 0x2 if self._msgpack else 0x1
        data = b"".join(_frame_header(opcode, len(frame)) + frame for frame in frames)
        try:
            future = _write(stream, data)
        except tornado.iostream.StreamClosedError:
            return
        if future is not None and stream.writing():
            # The socket did not take it all: send more only once this has drained, so a slow
            # reader's backlog stays in its session queue, not in our write buffer.
            self._writing = True
            future.add_done_callback(self._written)

    def _written(self, future: Any) -> None:
        self._writing = False
        if future.cancelled() or future.exception() is not None:
            self._wake_reader()
            return
        if self._backlog:
            backlog, self._backlog = self._backlog, []
            self._send(backlog)
            if self._writing:
                return  # the reader stays paused until this drains too
        self._wake_reader()
        if self._draining:
            self._close_if_drained()
        elif self._has_queued():
            self.schedule_flush()

    # ------------------------------------------------------------------------------ close

    def finish_draining(self) -> None:
        """Answers the held connects now (the server is shutting down, so with advice to come
        back later), then closes with 1001 once everything pending is written."""
        self._draining = True
        for link in list(self.links.values()):
            if link.hold is not None:
                self._release(link)
        self._close_if_drained()

    def _close_if_drained(self) -> None:
        if self._draining and not self._writing and not self._backlog and not self._closed:
            self.close(1001, "server shutting down")

    def _wake_reader(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def abort(self) -> None:
        """Drops the connection at once (after a failure on our side)."""
        connection = self.ws_connection
        stream = connection.stream if connection is not None else None  # type: ignore[attr-defined]
        if stream is not None:
            stream.close()

    def on_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.endpoint.connection_closed()
        self.endpoint.stream_closed(self)
        if self._msgpack:
            self.endpoint.server.use_format("msgpack", -1)
        self._backlog.clear()
        self._wake_reader()
        for link in list(self.links.values()):
            link.session.detach(link)
            if link.hold is not None:
                # Nobody will read the reply; finishing restarts the expiry clock, and the queue
                # stays for the session's next connection.
                self._finish(link, deliver=False)
        self.links.clear()


def _frames(items: list[bytes], limit: int) -> list[list[bytes]]:
    """Groups encoded messages into frames of at most `limit` bytes (a larger message goes alone):
    coalescing must not produce frames that clients refuse (aiohttp's default limit is 4 MiB)."""
    frames: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for item in items:
        if current and size + len(item) + 1 > limit:
            frames.append(current)
            current, size = [], 0
        current.append(item)
        size += len(item) + 1
    if current:
        frames.append(current)
    return frames


def _frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 header of a final, unmasked (server-to-client) frame."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 1 << 16:
        return bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")


def _write(stream: tornado.iostream.IOStream, data: bytes) -> Any:
    """Writes `data`; None when the socket took all of it at once, else IOStream's future.

    With nothing buffered, a plain TCP stream's socket is sent to directly: IOStream.write would
    make a future and bookkeeping per frame for the same single send(). Whatever the socket does
    not take (or any error) goes through IOStream.write, which keeps its usual semantics."""
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
