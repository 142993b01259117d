"""The standalone server's listener: accepts TCP (or TLS) connections on sockets bound with
Tornado's netutil, serves each on an asyncio transport (stream.py: cheaper per request than
Tornado's IOStream) with an `HttpConnection`, bounds how many are open, and runs one clock for
all of them (timeouts, WebSocket pings) instead of a timer per connection."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import tornado.ioloop
import tornado.netutil

from ..core.tasks import TaskSet
from ..transports.context import Context
from ..transports.http import HttpRequest, HttpResponse, refusal
from .accepting import accept_handler
from .clock import Clock
from .holding import Holding
from .http1 import READ_SIZE, HttpConnection, forwarded_address, forwarded_scheme
from .seams import Connection
from .stream import ReadBuffer, TransportStream

log = logging.getLogger("bayeux.listener")

# Other resources served on the same port (health, metrics): exact path -> answer, or an
# awaitable of it (an answer gathered from the other processes of a deployment).
ExtraRoutes = dict[str, Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]]
# Sites served below a path (the admin page): path -> answer to any method at that path or
# below it.
Sites = dict[str, Callable[[HttpRequest], Awaitable[HttpResponse]]]


class Listener:
    """Serves the Bayeux endpoint at `path` (and every sub-path), `extra` routes and `sites`
    (which may not sit at or below the endpoint's path).

    `xheaders` trusts X-Real-IP / X-Forwarded-For from a reverse proxy for the client's address
    (used by the per-address limits); only turn it on behind a proxy that sets them.
    `ssl_options` serves https:// and wss:// (see tls_context)."""

    def __init__(
        self,
        context: Context,
        path: str = "/cometd",
        *,
        extra: ExtraRoutes | None = None,
        xheaders: bool = False,
        ssl_options: ssl.SSLContext | None = None,
        sites: Sites | None = None,
    ) -> None:
        settings = context.settings
        # A client pipelining past its answers is cut off here rather than buffered.
        self.max_buffer_size = settings.max_message_size + 4 * READ_SIZE
        self.read_buffer = ReadBuffer(READ_SIZE)
        self.ssl_options = ssl_options
        self._stop_accepting: list[Callable[[], None]] = []
        self._sockets: list[socket.socket] = []
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        self.context = context
        self.prefix = path.rstrip("/")
        self.extra = dict(extra or {})
        self.sites = {site.rstrip("/"): answer for site, answer in (sites or {}).items()}
        for site in self.sites:
            if not site.startswith("/") or self.serves(site) or self.serves(site + "/"):
                raise ValueError(f"a site's path must start with '/', outside {path}: {site!r}")
        self.xheaders = xheaders
        self.connections: set[Connection] = set()
        self._out_of_files_logged = 0.0
        # Connections handed over to another kind (an upgrade's WebSocket), running.
        self._tasks = TaskSet("a connection", log)
        seconds = min(settings.idle_timeout, settings.body_timeout) / 2000
        period_ms = max(50.0, min(1000.0, seconds * 1000))
        # Each connection's next deadline; the ticker runs while some connection has one.
        self.clock = Clock(period_ms / 1000)
        self._ticker = tornado.ioloop.PeriodicCallback(self._tick, period_ms)

    def serves(self, path: str) -> bool:
        """Whether `path` is the endpoint's (the CometD client appends /handshake, ...), and
        not one of the extra routes (which may sit below the endpoint's path)."""
        prefix = self.prefix
        return (
            path == prefix or path.startswith(prefix + "/") or (not prefix and path == "/")
        ) and path not in self.extra

    async def extra_response(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        handler = self.extra.get(path)
        if handler is None:
            for site, answer in self.sites.items():
                if path == site or path.startswith(site + "/"):
                    return await answer(request)
            return refusal(404, "not found")
        if request.method not in ("GET", "HEAD"):
            return refusal(405, "method not allowed")
        response = handler(request)
        if not isinstance(response, HttpResponse):
            response = await response
        return response

    def client_address(self, headers: dict[str, str], peer_ip: str | None) -> str | None:
        return forwarded_address(headers, peer_ip) if self.xheaders else peer_ip

    def scheme(self, headers: dict[str, str]) -> str:
        if self.xheaders:
            forwarded = forwarded_scheme(headers)
            if forwarded is not None:
                return forwarded
        return "https" if self.ssl_options is not None else "http"

    def listen(self, port: int, address: str = "") -> None:
        """Binds `port` (every address, or `address`) and starts accepting."""
        self.add_sockets(tornado.netutil.bind_sockets(port, address or None))

    def add_sockets(self, sockets: list[socket.socket]) -> None:
        """Starts accepting on bound, listening sockets (tornado.netutil.bind_sockets)."""
        loop = tornado.ioloop.IOLoop.current().asyncio_loop  # type: ignore[attr-defined]
        for sock in sockets:
            self._sockets.append(sock)
            self._stop_accepting.append(
                accept_handler(loop, sock, self._accepted, self._out_of_files)
            )

    def _out_of_files(self, error: OSError) -> None:
        """An accept failed for want of files (or memory): accepting pauses a moment."""
        self.context.server.stats.refused["out-of-files"] += 1
        now = time.monotonic()
        if now - self._out_of_files_logged >= 10.0:
            self._out_of_files_logged = now
            log.warning(
                "cannot accept connections: %s (%d open here; the open-file limit is below"
                " --max-connections): accepting pauses and clients wait in the listen queue",
                error.strerror,
                self.context.connections,
            )

    def _accepted(self, sock: socket.socket, address: Any) -> None:
        context = self.context
        if context.connections >= context.settings.max_connections:
            context.server.stats.refused["max-connections"] += 1
            sock.close()
            return
        holding = None
        if not self.xheaders:  # behind a proxy every connection is the proxy's: not counted
            budgets = context.server.budgets
            ip = address[0] if isinstance(address, tuple) and address else None
            budget = budgets.connected(ip)
            if budget is None:
                context.server.stats.refused["address-bytes"] += 1
                sock.close()
                return
            holding = Holding(budgets, budget)
        send_buffer = context.settings.socket_send_buffer
        if send_buffer > 0:
            # What the kernel keeps for a client that does not read (it doubles this figure).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        # Counted from here: a TLS handshake that never comes holds a socket too.
        context.connection_opened()
        self.spawn(self._serve(sock, address, holding))

    async def _serve(self, sock: socket.socket, address: Any, holding: Holding | None) -> None:
        stream = TransportStream(self.max_buffer_size, self.read_buffer)
        tls = self.ssl_options
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: stream,
                sock,
                ssl=tls,
                # A client that starts no handshake is dropped like one that sends no request.
                ssl_handshake_timeout=self.context.settings.idle_timeout_seconds if tls else None,
            )
        except (TimeoutError, OSError, ssl.SSLError):
            # A failed TLS handshake, or a client gone before it began: nothing to serve.
            sock.close()
            self.context.connection_closed()
            if holding is not None:
                holding.close()
            return
        stream.set_nodelay(True)
        connection = HttpConnection(self, stream, address, holding)
        self.connections.add(connection)
        await connection.run()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(work)

    def wake_at(self, connection: Connection, when: float) -> None:
        """Has the clock look at `connection` (its `tick`) once the monotonic time `when` has
        passed."""
        self.clock.at(connection, when)
        if not self._ticker.is_running():
            self._ticker.start()

    def replace(self, old: Connection, new: Connection) -> None:
        """A connection changed hands (HTTP upgraded to WebSocket); it stays counted."""
        self.connections.discard(old)
        self.connections.add(new)

    def closed(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            self.context.connection_closed()
            if connection.holding is not None:
                connection.holding.close()

    def stop(self) -> None:
        """Stops accepting, and closes the idle keep-alive connections; the endpoint's
        shutdown drains the rest."""
        for stop_accepting in self._stop_accepting:
            stop_accepting()
        for sock in self._sockets:
            sock.close()
        self._stop_accepting.clear()
        self._sockets.clear()
        for connection in list(self.connections):
            connection.finish_draining()

    def _tick(self) -> None:
        """Looks at the connections whose deadline has passed (clock.py), and at no other."""
        now = time.monotonic()
        connections = self.connections
        clock = self.clock
        for connection in clock.due(now):
            if connection not in connections:
                continue  # closed, or upgraded to another connection since
            try:
                later = connection.tick(now)
            except Exception:  # one connection must not stop the clock for the others
                log.exception("connection tick failed")
                continue
            if later:
                clock.at(connection, later)
        if clock.empty():
            self._ticker.stop()


def tls_context(certfile: str, keyfile: str | None, ca_file: str | None) -> ssl.SSLContext:
    """A server TLS context with Python's secure defaults; with `ca_file`, clients must present
    a certificate that CA signed (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    if ca_file:
        context.load_verify_locations(ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
