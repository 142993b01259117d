"""The endpoint as an ASGI 3 application, for hosts that speak ASGI: uvicorn, hypercorn,
Starlette and FastAPI mounts, Django's ASGI routing. The transports decide everything; this
module only turns ASGI messages into a transport's plain values and back.

- http: long-polling and callback-polling (the body bounded by max_message_size as it arrives:
  413), EventSource for GETs that ask for an event stream (a streamed body); a held connect is
  released when the host reports `http.disconnect`.
- websocket: the websocket transport, JSON or the msgpack subprotocol; a message above
  max_message_size closes with 1009. Backpressure comes from awaiting `send`.
- lifespan: starts the endpoint and drains it on shutdown. Mounted where no lifespan events
  arrive (a Starlette Mount), it starts on first use; call `Endpoint.shutdown()` from the host's
  own shutdown to drain it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..core.tasks import TaskSet
from ..transports.context import Context
from ..transports.eventsource import EventStream, open_stream
from ..transports.http import HttpRequest, HttpResponse, wants_event_stream
from ..transports.polling import PollingExchange
from ..transports.websocket import (
    CLOSE_TOO_BIG,
    BayeuxWebSocket,
    select_subprotocol,
    upgrade_context,
)
from ..transports.welcome import welcome_page
from .eager import Finished, send_eagerly, start
from .headers import headers_from

log = logging.getLogger("bayeux.asgi")

# ASGI's own types: its messages are dicts by the specification.
Scope = MutableMapping[str, Any]
AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

_SCHEMES = {"ws": "http", "wss": "https"}


class AsgiApp:
    """An ASGI 3 application serving every transport of `context` (an Endpoint)."""

    def __init__(self, context: Context, drain_timeout: float = 5.0) -> None:
        self.context = context
        self.drain_timeout = drain_timeout
        # Endpoint.shutdown when the host sends lifespan.shutdown.
        self.on_shutdown: Callable[[float], Awaitable[None]] | None = None

    def routes(self, path: str = "/cometd") -> list[Any]:
        """Starlette (and FastAPI) routes serving the endpoint at `path` and below it:
        `Starlette(routes=[*cometd.routes("/cometd"), ...])` or, in FastAPI,
        `app.router.routes[:0] = cometd.routes("/cometd")`: first, as the router tries its
        routes in order and every route before them costs each request to the endpoint a
        match (benchmarks/route_order.py). A bare `Mount(path)` would serve only `path/...`:
        Starlette redirects a request for `path` itself to `path/`, which a WebSocket cannot
        follow, and CometD clients connect to `path`."""
        from starlette.routing import Mount, Route, WebSocketRoute

        exact = path.rstrip("/") or "/"
        return [Route(exact, self), WebSocketRoute(exact, self), Mount(exact, app=self)]

    def in_front_of(
        self, app: Application, path: str = "/cometd", *, pass_on: bool = False
    ) -> Application:
        """One ASGI application: requests for `path` and below it reach the endpoint, every
        other HTTP request reaches `app`. For applications with no routing of their own for
        an ASGI app, Django's among them: `application = cometd.in_front_of(
        get_asgi_application())` in the project's asgi.py. The lifespan events start and
        drain the endpoint and are not passed on (Django has none); a WebSocket for another
        path is refused (HTTP 403), as Django serves none.

        With `pass_on`, `app` gets the lifespan events too (the endpoint starts before the
        application's startup and drains before its shutdown) and every WebSocket for
        another path: for a FastAPI or Starlette application whose middleware and routing
        the endpoint's requests then skip, at a lower cost per request than `routes()`
        (docs/performance.md); its middleware does not see them either (a policy that reads
        `scope["session"]` needs `routes()`). Starlette and FastAPI otherwise mount the
        endpoint with `routes()`, keeping their own lifespan and WebSockets.

        Added in version 0.3.0: `pass_on`."""
        return _InFront(self, app, path, pass_on)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # ------------------------------------------------------------------------------- http

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = request_of(scope)
        method = request.method
        if method == "GET":
            if wants_event_stream(method, request.headers):
                await self._event_stream(request, receive, send)
                return
            page = welcome_page(request, self.context.settings)
            if page is not None:
                await respond(send, page)
                return
        exchange = PollingExchange(self.context, request)
        declared = request.headers.get("content-length")
        refused = exchange.early_refusal(
            int(declared) if declared is not None and declared.isdigit() else None
        )
        if refused is not None:
            await respond(send, refused)
            return
        body = await read_body(receive, self.context.settings.max_message_size)
        if body is None:
            return  # the client left before its request was complete
        if body is TOO_LARGE:
            await respond(send, exchange.too_large())
            return
        request.body = body
        started = start(exchange.respond())
        if isinstance(started, Finished):
            # Answered without waiting (a publish, a connect answered at once): no task, no
            # watch on the client's disconnect.
            response = started.value
            if response is not None:
                await send(_start(response))
                await send({"type": "http.response.body", "body": response.body})
            return
        responding = asyncio.ensure_future(started.finish())
        gone = asyncio.ensure_future(disconnected(receive))
        try:
            await asyncio.wait({responding, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done():
                exchange.connection_lost()  # a held connect is freed now, not at its timeout
            response = await responding
        finally:
            gone.cancel()
        if response is not None and not gone.done():
            await respond(send, response)

    async def _event_stream(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        head, session = await open_stream(self.context, request)
        if session is None:
            await respond(send, head)
            return
        await send({"type": "http.response.start", "status": head.status, "headers": encoded(head)})
        await send({"type": "http.response.body", "body": head.body, "more_body": True})
        stream = EventStream(self.context, session, _BodySink(send))
        gone = asyncio.ensure_future(disconnected(receive))

        def left(task: asyncio.Future[None]) -> None:
            if not task.cancelled():
                stream.connection_lost()

        gone.add_done_callback(left)
        try:
            await stream.run()
        finally:
            if not gone.done():
                gone.cancel()
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -------------------------------------------------------------------------- websocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        context = self.context
        request = request_of(scope)
        origin = request.headers.get("origin")
        if origin is not None and not context.origin_allowed(origin, request.host):
            await send({"type": "websocket.close", "code": 1008})  # refused: HTTP 403
            return
        subprotocol = select_subprotocol(list(scope.get("subprotocols") or []))
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        context.connection_opened()
        sink = _FrameSink(send)
        transport = BayeuxWebSocket(
            context,
            sink,
            remote_ip=request.remote_ip,
            subprotocol=subprotocol,
            request=upgrade_context(request, context.settings.browser_cookie),
        )
        transport.opened()
        limit = context.settings.max_message_size
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break  # websocket.disconnect
                text = message.get("text")
                frame: str | bytes = text if text is not None else message.get("bytes") or b""
                if len(frame) > limit:  # a str's length in characters is at most its bytes'
                    sink.close(CLOSE_TOO_BIG, "message too big")
                    break
                await transport.received(frame)
        finally:
            transport.closed()
            context.connection_closed()

    # --------------------------------------------------------------------------- lifespan

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.context.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    await self.on_shutdown(self.drain_timeout)
                await send({"type": "lifespan.shutdown.complete"})
                return


class _InFront:
    """AsgiApp.in_front_of's application."""

    def __init__(self, endpoint: AsgiApp, app: Application, path: str, pass_on: bool) -> None:
        self.endpoint = endpoint
        self.app = app
        self.exact = path.rstrip("/") or "/"
        self.below = self.exact.rstrip("/") + "/"
        self.pass_on = pass_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path = str(scope.get("path") or "/")
        if path == self.exact or path.startswith(self.below):
            if kind != "lifespan":
                await self.endpoint(scope, receive, send)
                return
        if kind == "lifespan":
            if self.pass_on:
                await self.app(scope, self._sharing(receive), send)
            else:
                await self.endpoint(scope, receive, send)
        elif kind == "http" or self.pass_on:
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # not ours: HTTP 403

    def _sharing(self, receive: Receive) -> Receive:
        """The host's lifespan events as the application receives them: the endpoint starts
        before the application's startup, and drains before its shutdown."""
        endpoint = self.endpoint

        async def shared() -> AsgiMessage:
            message = await receive()
            if message["type"] == "lifespan.startup":
                endpoint.context.start()
            elif message["type"] == "lifespan.shutdown" and endpoint.on_shutdown is not None:
                await endpoint.on_shutdown(endpoint.drain_timeout)
            return message

        return shared


class _TooLarge(bytes):
    """The marker read_body returns for a body over its limit."""


TOO_LARGE = _TooLarge()


def request_of(scope: Scope) -> HttpRequest:
    """An ASGI scope as the transports' request. Header names come lower case (ASGI)."""
    raw = scope.get("headers") or ()
    headers, lines = headers_from(raw)
    client, server = scope.get("client"), scope.get("server")
    scheme = scope.get("scheme") or "http"
    query = scope.get("query_string")
    return HttpRequest(
        scope.get("method") or "GET",
        scope.get("path") or "/",
        query.decode("latin-1") if query else "",
        headers,
        b"",
        str(client[0]) if client else None,
        lines,
        _SCHEMES.get(scheme, scheme),
        str(server[0]) if server else None,
        # The host's own authentication is there: scope["session"] (Starlette's
        # SessionMiddleware), scope["user"] (AuthenticationMiddleware).
        handler=scope,
    )


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request's body, TOO_LARGE once it passes `limit` bytes (read no further), or None
    when the client left first."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body: bytes = message.get("body") or b""
    if len(body) > limit:
        return TOO_LARGE
    if not message.get("more_body"):
        return body  # the common case: the whole body in one message
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body") or b""
        size += len(chunk)
        if size > limit:
            return TOO_LARGE
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def disconnected(receive: Receive) -> None:
    """Returns once the host reports that the client went away."""
    while (await receive())["type"] != "http.disconnect":
        pass


def encoded(response: HttpResponse) -> list[tuple[bytes, bytes]]:
    """The response's headers as ASGI wants them; without a length, which `_start` adds."""
    headers = [
        (_ENCODED_NAMES.get(name) or _encoded_name(name), value.encode("latin-1"))
        for name, value in response.headers
    ]
    if response.close:
        headers.append((b"connection", b"close"))
    return headers


# Response header names as ASGI wants them (lower case bytes): the transports use few.
_ENCODED_NAMES: dict[str, bytes] = {}


def _encoded_name(name: str) -> bytes:
    encoded = name.lower().encode("latin-1")
    if len(_ENCODED_NAMES) < 256:
        _ENCODED_NAMES[name] = encoded
    return encoded


def _start(response: HttpResponse) -> AsgiMessage:
    """The http.response.start of a whole response: with its length, so that the host writes
    the body as it is rather than in chunks."""
    headers = encoded(response)
    if response.status != 204:  # a 204 has no body, and so no length (RFC 9110, 8.6)
        headers.append((b"content-length", b"%d" % len(response.body)))
    return {"type": "http.response.start", "status": response.status, "headers": headers}


async def respond(send: Send, response: HttpResponse) -> None:
    await send(_start(response))
    await send({"type": "http.response.body", "body": response.body})


class _BodySink:
    """An EventSource stream's chunks as ASGI body messages (transports.eventsource.StreamSink)."""

    __slots__ = ("send",)

    def __init__(self, send: Send) -> None:
        self.send = send

    def write(self, chunk: bytes) -> asyncio.Future[None] | None:
        return asyncio.ensure_future(
            self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        )


class _FrameSink:
    """WebSocket messages as ASGI send events (transports.websocket.FrameSink)."""

    __slots__ = ("send", "closed")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.closed = False

    def send_frames(self, payloads: list[bytes], binary: bool) -> asyncio.Future[None] | None:
        if self.closed:
            return None
        return send_eagerly(self._send_one, payloads, binary)

    def _send_one(self, payload: bytes, binary: bool) -> Awaitable[None]:
        if binary:
            return self.send({"type": "websocket.send", "bytes": payload})
        return self.send({"type": "websocket.send", "text": payload.decode()})

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            _closing.spawn(self.send({"type": "websocket.close", "code": code, "reason": reason}))

    def abort(self) -> None:
        self.close(1011, "server error")


# Close messages on their way (held until sent: asyncio keeps only weak references to tasks).
_closing = TaskSet("closing a WebSocket", log)
