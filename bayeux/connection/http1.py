"""One client's TCP connection speaking HTTP/1.1: parsed by httptools (llhttp), kept alive,
pipelined requests answered in order, bodies bounded before they are read, and each request
handed to the Bayeux transport it is for. A WebSocket upgrade hands the stream on to
`WebSocketConnection`.

Why not Tornado's HTTP1Connection and RequestHandler: for the one-message requests that
long-polling is made of, their per-request machinery cost ~5x the CPU of this path
(benchmarks/requests.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import httptools
import tornado.iostream
import tornado.netutil

from ..core.peer import Peer
from ..transports.eventsource import EventStream, open_stream
from ..transports.http import (
    HttpRequest,
    HttpResponse,
    refusal,
    wants_event_stream,
    wants_websocket,
)
from ..transports.polling import PollingExchange
from ..transports.welcome import welcome_page
from .holding import Holding
from .memory import large_input_done
from .seams import ConnectionHost
from .stream import TransportStream
from .websocket import WebSocketConnection, upgrade_answer

log = logging.getLogger("bayeux.connection")
# One line per answered request: refusals at INFO, the rest at DEBUG (long-polling makes
# several requests a second per client). Never a clientId or a query value.
access_log = logging.getLogger("bayeux.access")

READ_SIZE = 65536
MAX_HEADER_BYTES = 65536  # request line and headers together
MAX_HEADERS = 100  # header lines, repeated ones included
# Pipelined requests need no bound of their own: a connection is read again only once every
# request of the last read (at most READ_SIZE bytes) has been answered.

# Header names as sent -> lower-cased str, so that each request does not decode them again.
_HEADER_NAMES: dict[bytes, str] = {}

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}


class _Date:
    """The Date header, formatted once a second rather than once a response."""

    second = 0
    value = b""

    @classmethod
    def header(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.value = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return cls.value


def encode_head(status: int, headers: list[tuple[str, str]], extra: bytes) -> bytes:
    """A response's status line and headers, ending with `extra` header lines and the blank
    line. Header values come from the transports, never raw from the wire."""
    out = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} Status\r\n".encode(), _Date.header()]
    for name, value in headers:
        out.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    out.append(extra)
    out.append(b"\r\n")
    return b"".join(out)


class _Parsing:
    """The request being parsed."""

    __slots__ = (
        "url",
        "headers",
        "repeated",
        "header_lines",
        "lines",
        "header_bytes",
        "head_done",
        "body",
        "body_size",
        "refusal",
        "request",
        "exchange",
        "keep_alive",
        "chunks",
        "page",
    )

    def __init__(self) -> None:
        self.url = b""
        self.request: HttpRequest | None = None
        self.keep_alive = False
        self.headers: dict[str, str] = {}
        # Further values of repeated header lines, joined once the head is complete (joining
        # at each repeat cost time quadratic in their number).
        self.repeated: dict[str, list[str]] | None = None
        self.header_lines = 0
        # Every header line as received, for the request context (bounded as the head is).
        self.lines: list[tuple[str, str]] = []
        self.header_bytes = 0
        # Whether the request line and headers have all arrived.
        self.head_done = False
        self.body: list[bytes] = []
        self.body_size = 0
        # An answer decided before the body was read (the connection closes after it).
        self.refusal: HttpResponse | None = None
        self.exchange: PollingExchange | None = None
        # What a chunked body's size lines declare, read as its bytes arrive.
        self.chunks: DeclaredChunks | None = None
        # A browser's GET of the endpoint: the page it gets (transports/welcome.py).
        self.page: HttpResponse | None = None


class HttpConnection:
    """Reads requests, answers them in order, and keeps the connection while the client does.

    The listener's clock tick closes it when a request's headers (idle_timeout) or body
    (body_timeout) take too long, or when it sits idle between requests (idle_timeout)."""

    def __init__(
        self,
        listener: ConnectionHost,
        stream: TransportStream,
        address: Any,
        holding: Holding | None = None,
    ) -> None:
        self.listener = listener
        # What it holds of its client address's memory budget (None behind a trusted proxy:
        # the connection is the proxy's, not the client's).
        self.holding = holding
        self.context = listener.context
        self.stream = stream
        self.peer_ip = address[0] if isinstance(address, tuple) and address else None
        self.local_ip = stream.local_ip()
        # Made for a request's bytes and let go while the request is served: a held long-poll
        # needs no parser (benchmarks/memory.py), and the next request gets a fresh one.
        self.parser: httptools.HttpRequestParser | None = None
        self.parsing: _Parsing | None = None
        # Parsed requests waiting for their answer, in order (pipelining): usually one.
        self.ready: list[tuple[HttpRequest, _Parsing]] = []
        # When to give up on the client (monotonic seconds), or 0 while a request is served;
        # the listener's clock looks at it then (`_give_up_at`).
        self.deadline = 0.0
        self.clock_slot = 0
        self._give_up_at(time.monotonic() + self.context.settings.idle_timeout_seconds)
        # What a disconnect must tell: the held exchange or open event stream.
        self.current: PollingExchange | EventStream | None = None
        self.upgraded = False
        # Bytes fed to the parser while the current request's head is arriving, and the last
        # of them (where the head's blank line may have begun).
        self.head_fed = 0
        self.head_tail = b""
        # What the core knows of this connection, shared by its requests; behind a trusted
        # proxy each request names its own client, so each gets its own.
        self.peer = None if listener.xheaders else Peer(address=self.peer_ip)

    # ------------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        self.parsing = _Parsing()
        self._give_up_at(time.monotonic() + self.context.settings.idle_timeout_seconds)

    def on_url(self, url: bytes) -> None:
        parsing = self.parsing
        assert parsing is not None
        parsing.url += url
        parsing.header_bytes += len(url)
        if parsing.header_bytes > MAX_HEADER_BYTES and parsing.refusal is None:
            parsing.refusal = refusal(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        parsing = self.parsing
        assert parsing is not None
        parsing.header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        parsing.header_lines += 1
        if parsing.header_bytes > MAX_HEADER_BYTES or parsing.header_lines > MAX_HEADERS:
            if parsing.refusal is None:
                parsing.refusal = refusal(431, "request headers too large")
            return
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < 256:  # the names clients send are few; this stays small
                _HEADER_NAMES[name] = key
        text = value.decode("latin-1")
        parsing.lines.append((key, text))
        if key not in parsing.headers:
            parsing.headers[key] = text
        elif parsing.repeated is None:
            parsing.repeated = {key: [text]}
        else:
            parsing.repeated.setdefault(key, []).append(text)

    def on_headers_complete(self) -> None:
        parsing = self.parsing
        assert parsing is not None
        parsing.head_done = True
        if parsing.repeated is not None:
            headers = parsing.headers
            for key, values in parsing.repeated.items():
                # Cookie lines join with "; " (RFC 6265, 5.4), others with ", " (RFC 9110, 5.3).
                headers[key] = ("; " if key == "cookie" else ", ").join([headers[key], *values])
            parsing.repeated = None
        else:
            # No name repeats: the headers dict holds every line, in order, and the request
            # context reads them from it (RequestContext.headers). A held long-poll and an
            # open WebSocket keep their request: no tuple per line (benchmarks/memory.py).
            parsing.lines.clear()
        self._give_up_at(time.monotonic() + self.context.settings.body_timeout_seconds)
        if "chunked" in parsing.headers.get("transfer-encoding", "").lower():
            parsing.chunks = DeclaredChunks()
        if parsing.refusal is not None:
            return
        assert self.parser is not None
        if self.parser.get_http_version() not in ("1.1", "1.0"):
            parsing.refusal = refusal(505, "HTTP version not supported")
            return
        request = parsing.request = self._request(parsing)
        listener = self.listener
        if not listener.serves(request.path) or wants_websocket(parsing.headers):
            return  # answered once complete (an upgrade needs no body)
        if wants_event_stream(request.method, parsing.headers):
            return
        if request.method == "GET":
            parsing.page = welcome_page(request, self.context.settings)
            if parsing.page is not None:
                return
        exchange = parsing.exchange = PollingExchange(self.context, request, self.peer)
        length = parsing.headers.get("content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        parsing.refusal = exchange.early_refusal(declared)

    def on_body(self, body: bytes) -> None:
        parsing = self.parsing
        assert parsing is not None
        if parsing.refusal is not None:
            return
        parsing.body_size += len(body)
        if self.holding is not None and not self.holding.gather(len(body)):
            parsing.body.clear()
            parsing.refusal = refusal(503, "address over its memory budget")
            return
        if parsing.body_size > self.context.settings.max_message_size:
            exchange = parsing.exchange
            parsing.body.clear()
            parsing.refusal = (
                exchange.too_large() if exchange is not None else refusal(413, "body too large")
            )
            return
        parsing.body.append(body)

    def on_message_complete(self) -> None:
        parsing, self.parsing = self.parsing, None
        assert parsing is not None
        self.deadline = 0.0
        request = parsing.request or self._request(parsing)
        if parsing.body:
            request.body = b"".join(parsing.body)
            # The pieces go now, not when the request is answered: a request held while its
            # batch waits on a hook would hold its body twice (tests/system/test_hook_backlog.py).
            parsing.body.clear()
        parsing.keep_alive = self.parser is not None and self.parser.should_keep_alive()
        self.ready.append((request, parsing))

    def _request(self, parsing: _Parsing) -> HttpRequest:
        url = httptools.parse_url(parsing.url)
        headers = parsing.headers
        return HttpRequest(
            method=self.parser.get_method().decode("ascii", "replace") if self.parser else "GET",
            path=url.path.decode("utf-8", "replace") if url.path else "/",
            query=url.query.decode("utf-8", "replace") if url.query else "",
            headers=headers,
            remote_ip=self.listener.client_address(headers, self.peer_ip),
            header_lines=tuple(parsing.lines),  # () unless a name repeats: on_headers_complete
            scheme=self.listener.scheme(headers),
            local_ip=self.local_ip,
            client_certificate=self.stream.peer_certificate(),
        )

    # ------------------------------------------------------------------------- serving

    async def run(self) -> None:
        self.stream.set_close_callback(self._lost)
        try:
            while True:
                try:
                    data = await self.stream.read_bytes(READ_SIZE, partial=True)
                except tornado.iostream.StreamClosedError:
                    return
                trailing: bytes | None = None
                before = self.parsing
                head_open = before is not None and not before.head_done
                try:
                    if self.parser is None:
                        self.parser = httptools.HttpRequestParser(self)
                    self.parser.feed_data(data)
                except httptools.HttpParserUpgrade as exc:
                    trailing = data[exc.args[0] :] if exc.args else b""
                except httptools.HttpParserError:
                    # What was complete before the error is answered; then a 400 ends it.
                    while self.ready:
                        if not await self._answer(*self.ready.pop(0)):
                            return
                    await self._write(refusal(400, "malformed HTTP request"), keep_alive=False)
                    return
                parsing = self.parsing
                if parsing is not None and parsing.chunks is not None and parsing.refusal is None:
                    self._declared(parsing, self._body_of(data, parsing, before, head_open))
                # What is read of this read below: the bytes and the request they continued
                # are not kept while the requests are served (benchmarks/memory.py). The
                # parser runs only here, so the request still arriving stays `parsing`.
                size, tail = len(data), data[-3:]
                continued = head_open and parsing is before
                del data, before
                while self.ready:
                    if trailing is not None and len(self.ready) == 1:
                        await self._upgrade(self.ready.pop(0)[0], trailing)
                        return
                    if not await self._answer(*self.ready.pop(0)):
                        return
                if self.parsing is None and self.holding is not None:
                    self.holding.gathered()  # every request read so far has been answered
                parsing = self.parsing
                if parsing is not None and not parsing.head_done and parsing.refusal is None:
                    # httptools keeps an unfinished header line to itself until it ends: what
                    # it holds is bounded here, by the bytes fed while the head is arriving (a
                    # head begun in this read is counted whole: at most one read too many).
                    fed_before = self.head_fed if continued else 0
                    self.head_fed = fed_before + size
                    self.head_tail = tail
                    if self.head_fed > MAX_HEADER_BYTES:
                        parsing.refusal = refusal(431, "request headers too large")
                    elif self.holding is not None and not self.holding.gather(size):
                        parsing.refusal = refusal(503, "address over its memory budget")
                if parsing is not None and parsing.refusal is not None:
                    # Refused while its headers or body were still arriving: answer now.
                    await self._write(parsing.refusal, keep_alive=False)
                    return
                if trailing is not None:
                    await self._write(refusal(400, "unsupported upgrade"), keep_alive=False)
                    return
                if self.deadline == 0.0:
                    self._give_up_at(time.monotonic() + self.context.settings.idle_timeout_seconds)
        except Exception:  # nothing may escape into the IOLoop; this client alone is dropped
            log.exception("HTTP connection failed")
        finally:
            if not self.upgraded:
                self.close()

    def _body_of(
        self, data: bytes, parsing: _Parsing, before: _Parsing | None, head_open: bool
    ) -> bytes | None:
        """The part of `data` that is the current request's body; None when that cannot be
        told without parsing again (a request that began after another in the same read)."""
        if parsing is before:
            if not head_open:
                return data  # the head had arrived before this read
            joined = self.head_tail + data  # the blank line may straddle two reads
            offset = len(self.head_tail)
        elif before is None and not self.ready:
            joined, offset = data, 0  # the request began with this read
        else:
            return None
        end = joined.find(b"\r\n\r\n")
        return data[max(0, end + 4 - offset) :] if end >= 0 else None

    def _declared(self, parsing: _Parsing, body: bytes | None) -> None:
        """Refuses a chunked body as soon as its size lines declare more than the bound,
        rather than once that much has arrived (a Content-Length is checked the same way)."""
        assert parsing.chunks is not None
        if body is None or parsing.chunks.feed(body) <= self.context.settings.max_message_size:
            return
        exchange = parsing.exchange
        parsing.body.clear()
        parsing.refusal = (
            exchange.too_large() if exchange is not None else refusal(413, "body too large")
        )

    async def _answer(self, request: HttpRequest, parsing: _Parsing) -> bool:
        """Serves one complete request; whether the connection stays open for the next."""
        keep_alive = parsing.keep_alive and not self.context.server.shutting_down
        if self.parsing is None and not self.ready:
            self.parser = None
        if parsing.refusal is not None:
            await self._write(parsing.refusal, keep_alive=False, request=request)
            return False
        exchange, page = parsing.exchange, parsing.page
        # Not kept while the request is served (a held long-poll: benchmarks/memory.py).
        del parsing
        listener = self.listener
        if not listener.serves(request.path):
            extra = await listener.extra_response(request)
            return await self._write(
                extra, keep_alive, head=request.method == "HEAD", request=request
            )
        if wants_event_stream(request.method, request.headers):
            return await self._event_stream(request, keep_alive)
        if page is not None:
            return await self._write(page, keep_alive, request=request)
        if exchange is None:  # a WebSocket upgrade the parser did not flag: refused
            return await self._write(
                refusal(400, "bad WebSocket upgrade"), keep_alive=False, request=request
            )
        self.current = exchange
        try:
            response = await exchange.respond()
        finally:
            self.current = None
        large_input_done(len(request.body))
        if response is None:  # the client left while its connect was held
            return False
        keep_alive = keep_alive and not self.context.server.shutting_down
        return await self._write(response, keep_alive, request=request)

    async def _write(
        self,
        response: HttpResponse,
        keep_alive: bool,
        head: bool = False,
        request: HttpRequest | None = None,
    ) -> bool:
        level = logging.INFO if response.status >= 400 else logging.DEBUG
        if access_log.isEnabledFor(level):
            line = f"{request.method} {request.log_safe_uri()}" if request else "-"
            access_log.log(level, "%d %s (%s)", response.status, line, self.peer_ip)
        keep_alive = keep_alive and not response.close
        body = response.body
        # A 204 has no body, and so no length (RFC 9110, 8.6).
        extra = b"Content-Length: %d\r\n" % len(body) if response.status != 204 else b""
        if not keep_alive:
            extra += b"Connection: close\r\n"
        data = encode_head(response.status, response.headers, extra)
        if not head:
            data += body
        if not await self._send(data):
            return False
        return keep_alive

    async def _send(self, data: bytes) -> bool:
        """Writes `data`, waiting for it to drain when the socket did not take it all (so a
        client that does not read holds no more than this); False if the connection broke."""
        try:
            written = self.stream.write_now(data)
            if written is not None:
                if not self._hold_unsent(written):
                    return False
                await written
        except tornado.iostream.StreamClosedError:
            return False
        return True

    def _hold_unsent(self, written: asyncio.Future[Any]) -> bool:
        """Counts what the socket did not take against the address's budget until it does; a
        client over its budget that does not read is dropped (False)."""
        holding = self.holding
        if holding is None or holding.hold_unsent(self.stream.unsent(), written):
            return True
        self.stream.close()
        return False

    async def _event_stream(self, request: HttpRequest, keep_alive: bool) -> bool:
        head, session = await open_stream(self.context, request)
        if session is None:
            return await self._write(head, keep_alive, request=request)
        data = encode_head(head.status, head.headers, b"Transfer-Encoding: chunked\r\n")
        stream = EventStream(self.context, session, _ChunkedSink(self.stream, self._hold_unsent))
        if not await self._send(data + _chunk(head.body)):
            return False
        self.current = stream
        try:
            await stream.run()
        finally:
            self.current = None
        if self.stream.closed():
            return False
        keep_alive = keep_alive and not self.context.server.shutting_down
        if not await self._send(b"0\r\n\r\n"):
            return False
        return keep_alive

    async def _upgrade(self, request: HttpRequest, trailing: bytes) -> None:
        if not self.listener.serves(request.path):
            await self._write(refusal(404, "not found"), keep_alive=False, request=request)
            return
        if not wants_websocket(request.headers):
            await self._write(
                refusal(400, "unsupported upgrade"), keep_alive=False, request=request
            )
            return
        answer, subprotocol, deflate = upgrade_answer(self.context, request)
        if answer.status != 101:
            await self._write(answer, keep_alive=False, request=request)
            return
        if not await self._send(encode_head(101, answer.headers, b"")):
            return
        self.upgraded = True
        self.parser = None  # the WebSocket's frames need no HTTP parser (benchmarks/memory.py)
        self.stream.set_close_callback(None)
        if self.holding is not None:
            self.holding.gathered()
        websocket = WebSocketConnection(
            self.listener, self.stream, request, subprotocol, deflate, self.holding
        )
        self.listener.replace(self, websocket)
        # Its own task, so that this connection's coroutines end here rather than sit under
        # the WebSocket's for its whole life (memory per idle WebSocket: benchmarks/memory.py).
        self.listener.spawn(websocket.run(trailing))

    # ----------------------------------------------------------------------- lifecycle

    def _lost(self) -> None:
        current = self.current
        if current is not None:
            current.connection_lost()

    def _give_up_at(self, when: float) -> None:
        """Gives up on the client at the monotonic time `when` unless it moves on by then."""
        self.deadline = when
        self.listener.wake_at(self, when)

    def tick(self, now: float) -> float:
        """The listener's clock: gives up on a client that is too slow or idle too long;
        returns the deadline still ahead (0.0: none, as while a request is served)."""
        deadline = self.deadline
        if deadline and now > deadline:
            if not self.stream.closed():
                self.stream.close()
            return 0.0
        return deadline

    def finish_draining(self) -> None:
        """The server drains: an idle keep-alive connection is closed now (one serving a
        request closes after answering it)."""
        if self.current is None and self.parsing is None and not self.ready:
            self.stream.close()

    def close(self) -> None:
        if not self.stream.closed():
            self.stream.close()
        self.listener.closed(self)


class _ChunkedSink:
    """An EventSource stream's body in HTTP/1.1 chunks."""

    __slots__ = ("stream", "hold_unsent")

    def __init__(
        self, stream: TransportStream, hold_unsent: Callable[[asyncio.Future[Any]], bool]
    ) -> None:
        self.stream = stream
        # Counts what the socket has not taken against the address's budget (HttpConnection).
        self.hold_unsent = hold_unsent

    def write(self, chunk: bytes) -> asyncio.Future[None] | None:
        try:
            written = self.stream.write_now(_chunk(chunk))
            if written is not None and not self.hold_unsent(written):
                raise tornado.iostream.StreamClosedError()
            return written
        except tornado.iostream.StreamClosedError:
            future = asyncio.get_running_loop().create_future()
            future.set_exception(tornado.iostream.StreamClosedError())
            return future


class DeclaredChunks:
    """Adds up the sizes a chunked body's size lines declare, as its bytes arrive. httptools
    checks the framing and hands over the data; it does not tell the sizes it reads, and a
    body declared past the bound should be refused before it is sent, not after."""

    __slots__ = ("_state", "_size", "_digits", "_remaining", "total")

    _SIZE, _LINE, _DATA, _DATA_END, _DONE = range(5)

    def __init__(self) -> None:
        self._state = self._SIZE
        self._size = 0
        self._digits = 0
        self._remaining = 0
        self.total = 0

    def feed(self, data: bytes) -> int:
        """Reads the next bytes of the body; returns the total declared so far."""
        at, end = 0, len(data)
        while at < end and self._state != self._DONE:
            if self._state == self._DATA:
                taken = min(self._remaining, end - at)
                self._remaining -= taken
                at += taken
                if not self._remaining:
                    self._state = self._DATA_END
                continue
            byte = data[at]
            at += 1
            if self._state == self._SIZE:
                digit = _HEX.get(byte)
                if digit is not None:
                    self._size = self._size * 16 + digit
                    self._digits += 1
                    continue
                self._state = self._LINE  # an extension, or the line's end
            if byte != 0x0A:  # LF ends the size line and the data's CRLF
                continue
            if self._state == self._LINE:
                self.total += self._size
                if self._size == 0:
                    self._state = self._DONE  # the last chunk: trailers follow
                else:
                    self._remaining, self._state = self._size, self._DATA
                self._size = self._digits = 0
            elif self._state == self._DATA_END:
                self._state = self._SIZE
        return self.total


_HEX = {ord(c): int(c, 16) for c in "0123456789abcdefABCDEF"}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def forwarded_scheme(headers: dict[str, str]) -> str | None:
    """The scheme a trusted proxy reports (X-Forwarded-Proto, else X-Scheme, as Tornado reads
    them), when it is http or https."""
    value = headers.get("x-forwarded-proto", headers.get("x-scheme", ""))
    scheme = value.split(",")[-1].strip().lower()
    return scheme if scheme in ("http", "https") else None


def forwarded_address(headers: dict[str, str], peer_ip: str | None) -> str | None:
    """The client's address as a trusted proxy reports it (X-Real-IP, else the last
    X-Forwarded-For entry), when it is a valid address; else the peer's."""
    candidate = headers.get("x-forwarded-for", "").split(",")[-1].strip()
    candidate = headers.get("x-real-ip", candidate).strip()
    if candidate and tornado.netutil.is_valid_ip(candidate):
        return candidate
    return peer_ip
