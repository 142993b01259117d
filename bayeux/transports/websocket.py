"""The `websocket` transport: Bayeux message arrays in text frames, both ways.

Replies go out as soon as a frame's messages are handled; deliveries go out as soon as they are
queued (a held `/meta/connect` is answered at its timeout, as CometD does over WebSocket). While
one frame is being written, newly queued messages wait in the session queue and leave together in
the next frame: a slow reader holds back only its own messages, never the publisher or others.
Replies wait too, and the socket's next frame is not read until they are written: a client that
sends without reading stops being read, instead of growing the server's write buffer.

`BayeuxWebSocket` is the transport's semantics. The connection that carries it (the standalone
connection layer, or Tornado's WebSocketHandler when embedded) hands it each received message and
supplies a `FrameSink` that writes frames.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, Protocol

from ..core import codec
from ..core.context import RequestContext
from ..core.message import (
    Delivery,
    Message,
    ProtocolError,
    TooManyMessages,
    batch_from,
    decoded_cost,
)
from ..core.peer import Peer
from ..core.server import ConnectHold
from ..core.session import ServerSession, Wakeup, reply_ready
from ..core.tasks import TaskSet
from .context import Context
from .http import HttpRequest
from .shared import LARGE, DerivedBytes, forget_all

log = logging.getLogger("bayeux.websocket")

CLOSE_GOING_AWAY = 1001  # the server drains
CLOSE_UNSUPPORTED_DATA = 1003  # a binary frame without a binary subprotocol
CLOSE_INVALID_PAYLOAD = 1007  # not JSON, or not Bayeux messages
CLOSE_TOO_BIG = 1009  # a message above max_message_size
# Binary frames carrying msgpack arrays of the same Bayeux messages; JSON text frames otherwise.
MSGPACK_SUBPROTOCOL = "bayeux-msgpack"
# Bytes the flusher writes in one loop turn before it lets other work run (it always writes
# at least one socket's frame): small fan-outs finish in one turn, big broadcasts take slices.
WRITE_SHARE = 4 * 1024 * 1024
# Sockets the flusher writes in one loop turn, whatever their frames' size: a small message
# to every subscriber of a process costs a write system call each, and tens of thousands of
# them in one turn held every other connection, timer and Redis reply of the process waiting
# (benchmarks/scale.py measures the longest stall during a broadcast).
FLUSH_SHARE = 512


def upgrade_context(upgrade: HttpRequest, browser_cookie: str) -> RequestContext:
    """The request context of a WebSocket: its upgrade request, with the browser its cookie
    names (a WebSocket cannot be given one: without it, its sessions are bound to none)."""
    upgrade.identify_browser(browser_cookie)
    return upgrade.context("websocket")


def select_subprotocol(offered: list[str]) -> str | None:
    """The subprotocol to answer an upgrade offering `offered` with."""
    return MSGPACK_SUBPROTOCOL if MSGPACK_SUBPROTOCOL in offered else None


class FrameSink(Protocol):
    """How the transport writes to its connection."""

    def send_frames(self, payloads: list[bytes], binary: bool) -> asyncio.Future[None] | None:
        """Writes one data frame per payload, in order; None when the socket took them all at
        once, else a future resolved once written (failed if the connection broke)."""

    def close(self, code: int, reason: str) -> None:
        """Starts the closing handshake."""

    def abort(self) -> None:
        """Drops the connection at once (after a failure on our side)."""


class _Flusher:
    """Flushes every socket that has messages waiting, once per loop turn, with one plain
    call_soon (Tornado's add_callback is thread-safe, so it writes to a self-pipe every call).

    A turn writes at most WRITE_SHARE bytes to at most FLUSH_SHARE sockets: the sockets left
    over (a big broadcast, or a small one to many) wait for the next turn, after whatever else
    is ready, and behind the sockets that asked for a flush meanwhile, so that a small message
    is not held up by a big one's slices."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[BayeuxWebSocket] = []
        self.deferred: list[BayeuxWebSocket] = []

    def add(self, socket: BayeuxWebSocket) -> None:
        if not self.pending and not self.deferred:
            self.loop.call_soon(self.run)
        self.pending.append(socket)

    def run(self) -> None:
        queue = self.pending + self.deferred if self.deferred else self.pending
        self.pending, self.deferred = [], []
        now = time.monotonic()  # one clock read for every socket's latency
        written = 0
        for index, socket in enumerate(queue):
            if written >= WRITE_SHARE or index >= FLUSH_SHARE:
                self.deferred = queue[index:]
                self.loop.call_soon(self.run)
                return
            try:
                written += socket._flush(now)
            except Exception:
                # One socket's failure must not leave the others waiting for a flush that
                # never comes: it is dropped, and the rest are flushed.
                log.exception("flushing a WebSocket failed; closing it")
                socket.abort()
        if written >= LARGE and not self.pending:
            forget_all()  # the broadcast is written everywhere: its shared bytes can go


_FLUSHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher() -> _Flusher:
    loop = asyncio.get_running_loop()
    flusher = _FLUSHERS.get(loop)
    if flusher is None:
        flusher = _FLUSHERS[loop] = _Flusher(loop)
    return flusher


# Connect replies waiting for asynchronous outgoing extensions.
_replies_later = TaskSet("a connect reply's outgoing extensions", log)


class _SessionLink:
    """The `Waiter` tying one session to one WebSocket."""

    __slots__ = ("socket", "session", "hold", "timer")

    is_stream = False

    def __init__(self, socket: BayeuxWebSocket, session: ServerSession) -> None:
        self.socket = socket
        self.session = session
        self.hold: ConnectHold | None = None
        self.timer: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        if self.socket.context.server.shutting_down:
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
        asyncio.get_running_loop().call_later(seconds, self.wake)

    def displace(self) -> None:
        # Another connection took the session over: answer our held connect, stop delivering.
        self.socket.unlink(self, displaced=True)

    def close(self) -> None:
        self.socket.unlink(self, displaced=False)


class BayeuxWebSocket:
    """One WebSocket's Bayeux semantics: the sessions it carries, their held connects, and
    frames out with one in flight at a time."""

    # One per open WebSocket, most of them idle (benchmarks/memory.py).
    __slots__ = (
        "context",
        "request",
        "sink",
        "links",
        "_flush_scheduled",
        "_flusher",
        "_writing",
        "_closed",
        "_msgpack",
        "_backlog",
        "_drained",
        "_draining",
        "peer",
    )

    def __init__(
        self,
        context: Context,
        sink: FrameSink,
        *,
        remote_ip: str | None = None,
        subprotocol: str | None = None,
        request: RequestContext | None = None,
    ) -> None:
        self.context = context
        # The upgrade request: every batch on this socket is handled with it (core/context.py).
        self.request = request
        self.sink = sink
        self.links: dict[str, _SessionLink] = {}
        self._flush_scheduled = False
        # This loop's flusher, looked up at the first flush rather than at every one (a
        # get_running_loop() with its getpid() system call plus a weak-dict lookup, once per
        # socket and burst, shows in benchmarks/fanout.py).
        self._flusher: _Flusher | None = None
        self._writing = False
        self._closed = False
        self._msgpack = subprotocol == MSGPACK_SUBPROTOCOL
        # Encoded messages waiting for the frame in flight to be written (replies, released
        # connects); bounded by one batch of replies plus one reply per linked session. None
        # while there are none, as most of the time.
        self._backlog: list[bytes] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._draining = False
        self.peer = Peer(remote_ip, True, self._msgpack)  # persistent; binary with msgpack

    def opened(self) -> None:
        """Called once the upgrade is answered."""
        self.context.start()
        self.context.stream_opened(self)
        if self._msgpack:
            self.context.server.use_format("msgpack", +1)

    def _encode(self, message: Message) -> bytes:
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
                self.context.server.stats.dropped["not-encodable"] += 1
        return out

    # -------------------------------------------------------------------------- receiving

    async def received(self, frame: str | bytes) -> None:
        """Handles one message of the client's. The connection reads the next one only once
        this returns: a socket's batches stay in order, and a client that does not read its
        replies stops being read."""
        if isinstance(frame, bytes) and not self._msgpack:
            self.sink.close(CLOSE_UNSUPPORTED_DATA, "binary frames need a binary subprotocol")
            return
        try:
            value = codec.msgpack_loads(frame) if isinstance(frame, bytes) else codec.loads(frame)
        except codec.DecodeError:
            self.sink.close(CLOSE_INVALID_PAYLOAD, "frame is not valid JSON or msgpack")
            return
        if value == []:
            return  # a keep-alive some clients send
        try:
            messages = batch_from(value, self.context.settings.max_batch_messages)
        except TooManyMessages as exc:
            self.sink.close(CLOSE_TOO_BIG, str(exc))
            return
        except ProtocolError as exc:
            self.sink.close(CLOSE_INVALID_PAYLOAD, f"not Bayeux messages: {exc}"[:120])
            return
        server = self.context.server
        # The frame itself is held too while its batch is handled (the connection let go of
        # its charge once the message was whole).
        cost = 0
        if server.batches_may_wait():
            cost = len(frame) + decoded_cost(frame, value if isinstance(frame, bytes) else None)
        outcome = await server.handle(messages, self.peer, self.request, cost=cost)
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
            out.extend(self._finish(link, Wakeup.REPLACED))
        session.attach(link)
        server = self.context.server
        link.hold = hold
        if (
            hold.timeout <= 0
            or server.shutting_down
            or session.ended is not None
            or (session.connect_delivery_only and session.queue)
        ):
            out.extend(self._finish(link))
            return out
        link.timer = asyncio.get_running_loop().call_later(hold.timeout, self._release, link)
        if session.queue and not session.connect_delivery_only:
            # What is already queued leaves now, before the held connect's eventual reply.
            self.schedule_flush()
        return out

    def schedule_release(self, link: _SessionLink) -> None:
        asyncio.get_running_loop().call_soon(self._release, link)

    def _release(self, link: _SessionLink) -> None:
        """Answers the link's held connect now (timeout, or messages for an ack session)."""
        link.timer = None
        if link.hold is not None and not self._closed:
            self._send(self._finish(link))

    def _finish(self, link: _SessionLink, why: Wakeup = Wakeup.MESSAGES) -> list[bytes]:
        """The encoded deliveries and reply completing the link's held connect."""
        hold, link.hold = link.hold, None
        if link.timer is not None:
            link.timer.cancel()
            link.timer = None
        assert hold is not None
        deliveries, reply = self.context.server.finish_connect(hold, why)
        if hold.pending is not None:
            # Asynchronous outgoing extensions are still on the reply: it follows when done.
            _replies_later.spawn(self._send_when_ready(hold, reply))
            return self._encoded(deliveries)
        return [*self._encoded(deliveries), self._encode(reply)]

    async def _send_when_ready(self, hold: ConnectHold, reply: Message) -> None:
        await reply_ready(hold)
        if not self._closed:
            self._send([self._encode(reply)])

    def unlink(self, link: _SessionLink, *, displaced: bool) -> None:
        """The session left this socket (taken over elsewhere, or ended)."""
        if self.links.get(link.session.id) is link:
            del self.links[link.session.id]
        link.session.detach(link)
        if link.hold is not None and not self._closed:
            self._send(self._finish(link, Wakeup.DISPLACED if displaced else Wakeup.CLOSED))

    # ---------------------------------------------------------------------------- sending

    def schedule_flush(self) -> None:
        # Coalesce everything queued during this loop turn into one frame per socket.
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            flusher = self._flusher
            if flusher is None:
                flusher = self._flusher = _flusher()
            flusher.add(self)

    def _flush(self, now: float | None = None) -> int:
        """Sends what the linked sessions have queued, one frame's worth; the bytes sent."""
        self._flush_scheduled = False
        if self._writing or self._closed:
            return 0
        # One frame at a time: what does not fit waits in its session queue, where it counts
        # against max_queue_bytes, rather than in the socket's write buffer.
        budget = self.context.settings.max_message_size
        items: list[bytes] = []
        for link in self.links.values():
            session = link.session
            if budget <= 0:
                break
            queued = session.queue_bytes
            deliveries = session.sendable(budget)
            if deliveries:
                self.context.server.stats.observe_latency(
                    (now or time.monotonic()) - deliveries[0].born
                )
                budget -= queued - session.queue_bytes
                items.extend(self._encoded(deliveries))
        if items:
            self._send(items)
        if not self._writing and self._has_queued():
            self.schedule_flush()  # the socket took it all: the next frame, next loop turn
        return sum(map(len, items))

    def _has_queued(self) -> bool:
        return any(
            link.session.queue and not link.session.connect_delivery_only
            for link in self.links.values()
        )

    def _send(self, items: list[bytes]) -> None:
        if self._closed:
            return
        if self._writing:
            if self._backlog is None:
                self._backlog = items
            else:
                self._backlog.extend(items)
            return
        join = codec.join_msgpack_array if self._msgpack else codec.join_array
        frames = [
            # A large message alone in its frame (a big broadcast): the same bytes object for
            # every socket, so that the connection frames and compresses it once.
            _joined.get(f[0], self._msgpack, lambda item: join([item]))
            if len(f) == 1 and len(f[0]) >= LARGE
            else join(f)
            for f in _frames(items, self.context.settings.max_message_size)
        ]
        written = self.sink.send_frames(frames, self._msgpack)
        if written is not None:
            # The socket did not take it all: send more only once this has drained, so a slow
            # reader's backlog stays in its session queue, not in our write buffer.
            self._writing = True
            written.add_done_callback(self._written)

    def _written(self, future: Any) -> None:
        self._writing = False
        if future.cancelled() or future.exception() is not None:
            self._wake_reader()
            return
        if self._backlog:
            backlog, self._backlog = self._backlog, None
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
            self.sink.close(CLOSE_GOING_AWAY, "server shutting down")

    def _wake_reader(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def abort(self) -> None:
        self.sink.abort()

    def closed(self) -> None:
        """Called once the connection has closed, whichever side closed it."""
        if self._closed:
            return
        self._closed = True
        self.context.stream_closed(self)
        if self._msgpack:
            self.context.server.use_format("msgpack", -1)
        self._backlog = None
        self._wake_reader()
        for link in list(self.links.values()):
            link.session.detach(link)
            if link.hold is not None:
                # Nobody will read the reply; finishing restarts the expiry clock, and the queue
                # stays for the session's next connection.
                self._finish(link, Wakeup.GONE)
        self.links.clear()


# Large messages as one-message frame payloads, made once for all sockets (shared.py).
_joined = DerivedBytes(4 * 1024 * 1024)


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
