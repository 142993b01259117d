"""The endpoint in an aiohttp application: `endpoint.aiohttp_mount(app, "/cometd")` serves
`/cometd` and below it; `app.add_subapp("/cometd", endpoint.aiohttp_app())` serves only
`/cometd/...` (aiohttp does not route a sub-application's bare prefix, and CometD clients
connect to `/cometd` itself). The transports decide everything; this module only turns
aiohttp's requests into a transport's plain values and back, like adapters/asgi.py does.

aiohttp does not tell a handler that its client went away (unless the application runs with
handler_cancellation), so a held connect or an event stream looks at its connection once a
second while it waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from ..core.tasks import TaskSet
from ..transports.context import Context
from ..transports.eventsource import EventStream, open_stream
from ..transports.http import HttpRequest, HttpResponse, wants_event_stream, wants_websocket
from ..transports.polling import PollingExchange
from ..transports.websocket import (
    MSGPACK_SUBPROTOCOL,
    BayeuxWebSocket,
    upgrade_context,
)
from ..transports.welcome import welcome_page
from .eager import Finished, send_eagerly, start
from .headers import headers_from

# aiohttp 3.11 and later send a frame of bytes as they are.
_SEND_FRAME = hasattr(web.WebSocketResponse, "send_frame")

# How often a waiting request looks at whether its client is still there.
_GONE_CHECK_SECONDS = 1.0


def mount(
    app: web.Application,
    path: str,
    context: Context,
    drain: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serves every transport of `context` at `path` and below it in `app`; the application's
    startup starts it, and its shutdown runs `drain()` (Endpoint.shutdown)."""
    handlers = _Handlers(context)
    exact = path.rstrip("/")
    if exact:
        app.router.add_route("*", exact, handlers.dispatch)
    app.router.add_route("*", exact + "/{tail:.*}", handlers.dispatch)

    async def started(_: web.Application) -> None:
        context.start()

    app.on_startup.append(started)
    if drain is not None:

        async def shutdown(_: web.Application) -> None:
            await drain()

        app.on_shutdown.append(shutdown)


def aiohttp_app(
    context: Context, drain: Callable[[], Awaitable[None]] | None = None
) -> web.Application:
    """A sub-application serving every transport of `context` below its mount point."""
    app = web.Application()
    mount(app, "/", context, drain)
    return app


class _Handlers:
    def __init__(self, context: Context) -> None:
        self.context = context

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        plain = request_of(request)
        if wants_websocket(plain.headers):
            return await self._websocket(request, plain)
        if wants_event_stream(plain.method, plain.headers):
            return await self._event_stream(request, plain)
        if plain.method == "GET":
            page = welcome_page(plain, self.context.settings)
            if page is not None:
                return response_of(page)
        return await self._polling(request, plain)

    async def _polling(self, request: web.Request, plain: HttpRequest) -> web.StreamResponse:
        exchange = PollingExchange(self.context, plain)
        refused = exchange.early_refusal(request.content_length)
        if refused is not None:
            return response_of(refused)
        body = await read_body(request, self.context.settings.max_message_size)
        if body is None:
            return response_of(exchange.too_large())  # read no further
        plain.body = body
        started = start(exchange.respond())
        if isinstance(started, Finished):
            # Answered without waiting: no task watching for the client's disconnect.
            response = started.value
        else:
            gone = on_disconnect(request, exchange.connection_lost)
            try:
                response = await started.finish()
            finally:
                gone.cancel()
        if response is None:
            return web.Response(status=499)  # nobody reads it: the client is gone
        return response_of(response)

    async def _event_stream(self, request: web.Request, plain: HttpRequest) -> web.StreamResponse:
        head, session = await open_stream(self.context, plain)
        if session is None:
            return response_of(head)
        response = web.StreamResponse(status=head.status, headers=headers_of(head))
        await response.prepare(request)
        await response.write(head.body)
        stream = EventStream(self.context, session, _BodySink(response))
        gone = on_disconnect(request, stream.connection_lost)
        try:
            await stream.run()
        finally:
            gone.cancel()
        return response

    async def _websocket(self, request: web.Request, plain: HttpRequest) -> web.StreamResponse:
        context = self.context
        origin = plain.headers.get("origin")
        if origin is not None and not context.origin_allowed(origin, plain.host):
            return web.Response(status=403, text="origin not allowed")
        settings = context.settings
        ws = web.WebSocketResponse(
            protocols=(MSGPACK_SUBPROTOCOL,),
            max_msg_size=settings.max_message_size,  # above it aiohttp closes with 1009
            heartbeat=settings.ws_ping_interval_seconds or None,
        )
        await ws.prepare(request)
        context.connection_opened()
        transport = BayeuxWebSocket(
            context,
            _FrameSink(ws),
            remote_ip=plain.remote_ip,
            subprotocol=ws.ws_protocol,
            request=upgrade_context(plain, settings.browser_cookie),
        )
        transport.opened()
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
                    await transport.received(message.data)
                else:
                    break  # an error or a close
        finally:
            transport.closed()
            context.connection_closed()
        return ws


def request_of(request: web.Request) -> HttpRequest:
    raw = request.raw_headers
    headers, lines = headers_from(raw)
    transport = request.transport
    local = certificate = None
    if transport is not None:
        local = transport.get_extra_info("sockname")
        certificate = transport.get_extra_info("peercert")
    return HttpRequest(
        request.method,
        request.path,
        request.query_string,
        headers,
        b"",
        request.remote,
        lines,
        request.scheme,
        str(local[0]) if isinstance(local, tuple) and local else None,
        dict(certificate) if isinstance(certificate, dict) and certificate else None,
        # The host's own state is there: aiohttp-session's session, the application.
        handler=request,
    )


def headers_of(response: HttpResponse) -> list[tuple[str, str]]:
    """The response's headers, for aiohttp to make its own multidict of (once)."""
    if response.close:
        return [*response.headers, ("Connection", "close")]
    return response.headers


def response_of(response: HttpResponse) -> web.Response:
    return web.Response(status=response.status, headers=headers_of(response), body=response.body)


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None once it passes `limit` bytes (read no further)."""
    content = request.content
    body = await content.readany()
    if len(body) > limit:
        return None
    if content.at_eof():
        return body  # the common case: the whole body in one piece
    chunks = [body]
    size = len(body)
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def on_disconnect(request: web.Request, then: Callable[[], None]) -> asyncio.Future[None]:
    """Calls `then()` once the request's connection is gone (cancel it when done waiting)."""
    gone = asyncio.ensure_future(disconnected(request))

    def left(task: asyncio.Future[None]) -> None:
        if not task.cancelled():
            then()

    gone.add_done_callback(left)
    return gone


async def disconnected(request: web.Request) -> None:
    """Returns once the request's connection is gone."""
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(_GONE_CHECK_SECONDS)


class _BodySink:
    """An EventSource stream's chunks (transports.eventsource.StreamSink)."""

    __slots__ = ("response",)

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response

    def write(self, chunk: bytes) -> asyncio.Future[None] | None:
        return asyncio.ensure_future(self.response.write(chunk))


class _FrameSink:
    """WebSocket messages through aiohttp (transports.websocket.FrameSink)."""

    __slots__ = ("ws",)

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    def send_frames(self, payloads: list[bytes], binary: bool) -> asyncio.Future[None] | None:
        if self.ws.closed:
            return None
        return send_eagerly(self._send_one, payloads, binary)

    def _send_one(self, payload: bytes, binary: bool) -> Awaitable[None]:
        if binary:
            return self.ws.send_bytes(payload)
        if _SEND_FRAME:
            # The payload is UTF-8 already: not decoded here for aiohttp to encode again.
            return self.ws.send_frame(payload, WSMsgType.TEXT)
        return self.ws.send_str(payload.decode())

    def close(self, code: int, reason: str) -> None:
        _closing.spawn(self.ws.close(code=code, message=reason.encode()))

    def abort(self) -> None:
        self.close(1011, "server error")


# Closes on their way (held until done: asyncio keeps only weak references to tasks).
_closing = TaskSet("closing a WebSocket", logging.getLogger("bayeux.aiohttp"))
