"""A WebSocket connection of the standalone server: the upgrade answer, frames read with
wsproto's sans-I/O protocol, data frames written in one piece straight to the stream (built
by transports/wsframes.py), pings that find half-open peers, and the close codes clients are
owed (1007 for bad payloads, 1009 for messages above max_message_size)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from typing import Any

import tornado.iostream
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token

from ..transports.context import Context
from ..transports.http import HttpRequest, HttpResponse, origin_refused, refusal
from ..transports.websocket import (
    CLOSE_TOO_BIG,
    BayeuxWebSocket,
    select_subprotocol,
    upgrade_context,
)
from ..transports.wsframes import data_frames
from .deflate import InboundDeflate
from .holding import Holding
from .memory import large_input_done
from .seams import ConnectionHost
from .stream import TransportStream, retrieve

log = logging.getLogger("bayeux.websocket")

READ_SIZE = 65536
CLOSE_HANDSHAKE_SECONDS = 5.0  # how long a closing peer has to answer our close frame
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY_VIOLATION = 1008
# What each piece of a fragmented message costs while the message is gathered, beyond its
# bytes (a str or bytes object and its list slot): charged against max_message_size, so that a
# message of many tiny fragments costs no more than the same message in one frame (without it,
# two-byte fragments took many times the bound: benchmarks/attacks.py).
FRAGMENT_OVERHEAD = 64
# Control frames (pings, pongs) a client may send per second: each costs a parse and a pong,
# and a legitimate client sends one every few seconds at most.
MAX_CONTROL_FRAMES_PER_SECOND = 64


def upgrade_answer(
    context: Context, request: HttpRequest
) -> tuple[HttpResponse, str | None, InboundDeflate | None]:
    """The 101 answer to a valid upgrade (with the subprotocol chosen, and permessage-deflate
    when negotiated), or the refusal."""
    context.start()
    headers = request.headers
    if request.method != "GET":
        return refusal(405, "a WebSocket upgrade is a GET"), None, None
    if "upgrade" not in headers.get("connection", "").lower():
        return refusal(400, "missing 'Connection: upgrade'"), None, None
    if headers.get("sec-websocket-version") != "13":
        answer = refusal(426, "WebSocket version 13 only")
        answer.headers.append(("Sec-WebSocket-Version", "13"))
        return answer, None, None
    key = headers.get("sec-websocket-key", "")
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid_key = False
    if not valid_key:
        return refusal(400, "bad Sec-WebSocket-Key"), None, None
    if origin_refused(request, context):
        return refusal(403, "origin not allowed"), None, None
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    subprotocol = select_subprotocol(offered)
    answer_headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", generate_accept_token(key.encode()).decode()),
    ]
    if subprotocol is not None:
        answer_headers.append(("Sec-WebSocket-Protocol", subprotocol))
    deflate = None
    offers = headers.get("sec-websocket-extensions")
    if offers and context.settings.ws_compression:
        candidate = InboundDeflate(context.settings.max_message_size)
        agreed = server_extensions_handshake([o.strip() for o in offers.split(",")], [candidate])
        if agreed is not None and candidate.enabled():
            answer_headers.append(("Sec-WebSocket-Extensions", agreed.decode("ascii")))
            deflate = candidate
    return HttpResponse(101, answer_headers), subprotocol, deflate


class _Events(list[Any]):
    """wsproto's queue of events (`Connection._events`) as a list: the same two operations."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class WebSocketConnection:
    """Reads frames and hands each whole message to the Bayeux transport, one at a time;
    writes what the transport sends (it is the transport's `FrameSink`)."""

    __slots__ = (
        "listener",
        "stream",
        "protocol",
        "transport",
        "max_size",
        "ping_interval",
        "last_ping",
        "awaiting_pong",
        "deadline",
        "deflate_bits",
        "deflate",
        "control_window",
        "control_frames",
        "holding",
        "clock_slot",
        "_fragments",
        "_size",
    )

    def __init__(
        self,
        listener: ConnectionHost,
        stream: TransportStream,
        request: HttpRequest,
        subprotocol: str | None,
        deflate: InboundDeflate | None = None,
        holding: Holding | None = None,
    ) -> None:
        self.listener = listener
        # What it holds of its client address's memory budget: the message being gathered,
        # and what the socket has not taken yet.
        self.holding = holding
        self.stream = stream
        self.protocol = Connection(ConnectionType.SERVER, [deflate] if deflate else None)
        # wsproto queues events there only for a connection lost without a close frame, which
        # is never reported to it here; an empty deque is a 64-slot block per idle WebSocket
        # (benchmarks/memory.py).
        self.protocol._events = _Events()  # type: ignore[assignment]
        # The window our compressed frames use, when permessage-deflate was negotiated.
        self.deflate_bits = deflate.server_window_bits if deflate is not None else None
        self.deflate = deflate
        # Control frames received in the current one-second window, and when it started.
        self.control_window = 0.0
        self.control_frames = 0
        self.transport = BayeuxWebSocket(
            listener.context,
            self,
            remote_ip=request.remote_ip,
            subprotocol=subprotocol,
            request=upgrade_context(request, listener.context.settings.browser_cookie),
        )
        self.max_size = listener.context.settings.max_message_size
        self.ping_interval = listener.context.settings.ws_ping_interval_seconds
        self.last_ping = time.monotonic()
        self.awaiting_pong = False
        # Set once we sent a close frame: the peer must answer by then.
        self.deadline = 0.0
        self.clock_slot = 0
        if self.ping_interval:
            listener.wake_at(self, self.last_ping + self.ping_interval)
        # The frames of a fragmented message, while it arrives (None otherwise: most messages
        # come in one frame, and an idle socket keeps no list; benchmarks/memory.py).
        self._fragments: list[Any] | None = None
        self._size = 0

    async def run(self, trailing: bytes) -> None:
        self.transport.opened()
        try:
            data = trailing
            while True:
                if data:
                    self.protocol.receive_data(data)
                    # Parsed: not kept while the socket waits (benchmarks/memory.py).
                    data = b""
                    if not await self._handle_events():
                        return
                data = await self.stream.read_bytes(READ_SIZE, partial=True)
        except tornado.iostream.StreamClosedError:
            pass
        except Exception:  # nothing may escape into the IOLoop; this client alone is dropped
            log.exception("WebSocket connection failed")
        finally:
            self.transport.closed()
            if not self.stream.closed():
                self.stream.close()
            self.listener.closed(self)

    async def _handle_events(self) -> bool:
        """Handles what the last bytes completed; whether to keep reading."""
        for event in self.protocol.events():
            if isinstance(event, TextMessage | BytesMessage):
                data = event.data
                if not data and not event.message_finished and not self._inflating():
                    # An empty fragment carries nothing: a stream of them only costs CPU.
                    return self._fail(CLOSE_PROTOCOL_ERROR, "empty fragment")
                self._size += len(data.encode()) if isinstance(data, str) else len(data)
                if event.frame_finished and not event.message_finished:
                    self._size += FRAGMENT_OVERHEAD  # a frame of a fragmented message
                holding = self.holding
                if self._size > self.max_size:
                    return self._fail(CLOSE_TOO_BIG, f"message larger than {self.max_size} bytes")
                if holding is not None and not holding.gather(self._size - holding.gathering):
                    return self._fail(CLOSE_POLICY_VIOLATION, "address over its memory budget")
                fragments = self._fragments
                if not event.message_finished:
                    if fragments is None:
                        fragments = self._fragments = []
                    fragments.append(data)
                else:
                    self._fragments, self._size = None, 0
                    if holding is not None:
                        holding.gathered()
                    message: Any
                    if fragments is None:
                        message = data
                    else:
                        fragments.append(data)
                        message = fragments[0][:0].join(fragments)
                    if self.protocol.state is ConnectionState.OPEN:
                        await self.transport.received(message)
                    large_input_done(len(message))
            elif isinstance(event, Ping | Pong):
                if not self._control_frame_allowed():
                    return self._fail(CLOSE_POLICY_VIOLATION, "too many control frames")
                if isinstance(event, Pong):
                    self.awaiting_pong = False
                elif not self.stream.writing():
                    # A client that does not read what it is sent gets no more pongs: RFC 6455
                    # (5.5.3) lets us answer only the latest ping, and queued pongs grew
                    # without bound (benchmarks/attacks.py).
                    self._send_control(event.response())
            elif isinstance(event, CloseConnection):
                if self.protocol.state is ConnectionState.REMOTE_CLOSING:
                    self._send_control(event.response())  # the peer closed: answer it
                elif self.protocol.state is ConnectionState.OPEN:
                    # A protocol error wsproto found (bad UTF-8 is 1007): close with its code.
                    self._send_control(event)
                self.stream.close()
                return False
        return True

    def _fail(self, code: int, reason: str) -> bool:
        """Fails the connection (RFC 6455, 7.1.7): our close frame goes out, then the TCP
        connection closes without waiting for the peer's, and nothing more of what it sent is
        read (reading on, after 2,000,000 empty fragments, took seconds of CPU and kept what
        was still unparsed). Returns False: stop reading."""
        self._drop_message()
        if self.protocol.state is ConnectionState.OPEN and not self.stream.closed():
            self._send_control(CloseConnection(code=code, reason=reason))
        self.stream.close_after_writing()
        return False

    def _drop_message(self) -> None:
        self._fragments = None
        self._size = 0
        if self.holding is not None:
            self.holding.gathered()

    def _inflating(self) -> bool:
        """Whether the message arriving is compressed (its inflated pieces may be empty)."""
        return self.deflate is not None and self.deflate.inflating()

    def _control_frame_allowed(self) -> bool:
        """Counts a control frame; False past MAX_CONTROL_FRAMES_PER_SECOND."""
        now = time.monotonic()
        if now - self.control_window >= 1.0:
            self.control_window = now
            self.control_frames = 0
        self.control_frames += 1
        return self.control_frames <= MAX_CONTROL_FRAMES_PER_SECOND

    def _send_control(self, event: Any) -> None:
        try:
            written = self.stream.write_now(self.protocol.send(event))
        except tornado.iostream.StreamClosedError:
            return
        if written is not None:
            written.add_done_callback(retrieve)

    # ------------------------------------------------------------------------ FrameSink

    def send_frames(self, payloads: list[bytes], binary: bool) -> asyncio.Future[None] | None:
        if self.protocol.state is not ConnectionState.OPEN or self.stream.closed():
            return None
        try:
            written = self.stream.write_now(data_frames(payloads, binary, self.deflate_bits))
        except tornado.iostream.StreamClosedError:
            return None
        if written is None or (not self.stream.writing() and written.done()):
            return None
        holding = self.holding
        if holding is not None and not holding.hold_unsent(self.stream.unsent(), written):
            # A client that does not read, past its address's budget: dropped, not buffered.
            self.stream.close()
            return None
        return written

    def close(self, code: int, reason: str) -> None:
        if self.protocol.state is ConnectionState.OPEN and not self.stream.closed():
            self._send_control(CloseConnection(code=code, reason=reason))
            self.deadline = time.monotonic() + CLOSE_HANDSHAKE_SECONDS
            self.listener.wake_at(self, self.deadline)

    def abort(self) -> None:
        self.stream.close()

    # ----------------------------------------------------------------------- lifecycle

    def tick(self, now: float) -> float:
        """The listener's clock: pings an idle peer, and drops one that has not answered the
        previous ping (half-open) or our close. Returns when to be looked at next."""
        if self.deadline and now > self.deadline:
            self.stream.close()
            return 0.0
        if self.ping_interval and now - self.last_ping >= self.ping_interval:
            if self.awaiting_pong:
                self.stream.close()
                return 0.0
            self.last_ping = now
            self.awaiting_pong = True
            if self.protocol.state is ConnectionState.OPEN:
                self._send_control(Ping(b""))
        later = self.last_ping + self.ping_interval if self.ping_interval else 0.0
        if self.deadline and (not later or self.deadline < later):
            later = self.deadline
        return later

    def finish_draining(self) -> None:
        """The transport closes with 1001 after its pending frames (it is a drained stream)."""
