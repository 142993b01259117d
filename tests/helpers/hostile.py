"""Hostile "Bayeux servers" for the client's tests: aiohttp.web on 127.0.0.1 answering each
long-polling POST (and each WebSocket frame) with whatever the test's `answer` function makes,
and a real server restarted on the same port."""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import tornado.netutil
from aiohttp import web

from bayeux import Endpoint, Settings
from bayeux.testing import ServerThread, free_port

Message = dict[str, Any]
# What answers one request: its messages in, a response out (a body of JSON, or a response).
Answer = Callable[[list[Message]], Awaitable[web.StreamResponse | Any] | web.StreamResponse | Any]

_ids = itertools.count(1)


def handshake_ok(message: Message, **fields: Any) -> Message:
    """A successful handshake reply to `message` (long-polling and websocket offered)."""
    reply: Message = {
        "channel": "/meta/handshake",
        "id": message.get("id"),
        "successful": True,
        "version": "1.0",
        "clientId": f"hostile-{next(_ids)}",
        "supportedConnectionTypes": ["long-polling", "websocket"],
        "advice": {"reconnect": "retry", "interval": 0, "timeout": 1000},
    }
    reply.update(fields)
    return reply


def ok(message: Message, **fields: Any) -> Message:
    """A successful reply to `message`."""
    reply: Message = {
        "channel": message.get("channel"),
        "id": message.get("id"),
        "successful": True,
    }
    reply.update(fields)
    return reply


def json_response(value: Any, content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type=content_type)


class HostileServer:
    """Answers each request with `answer(messages)`: a JSON value (sent as application/json) or
    a StreamResponse made by the test. `received` counts the channels sent to it."""

    def __init__(self, answer: Answer, *, websocket: Answer | None = None) -> None:
        self.answer = answer
        self.websocket = websocket
        self.received: collections.Counter[str] = collections.Counter()
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self.request: web.Request | None = None  # the one being answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cometd"

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._socket(request)
        self.request = request
        messages = orjson.loads(await request.read())
        for message in messages:
            self.received[message.get("channel")] += 1
        result = self.answer(messages)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if self.websocket is None:
            raise web.HTTPBadRequest()
        socket = web.WebSocketResponse(max_msg_size=0)
        await socket.prepare(request)
        async for frame in socket:
            messages = orjson.loads(frame.data)
            for message in messages:
                self.received[message.get("channel")] += 1
            result = self.websocket(messages)
            if asyncio.iscoroutine(result):
                result = await result
            if isinstance(result, bytes | str):
                await socket.send_str(result.decode() if isinstance(result, bytes) else result)
            elif result is not None:
                await socket.send_bytes(orjson.dumps(result))
        return socket

    async def __aenter__(self) -> HostileServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/cometd", self._respond)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FixedPortServer(ServerThread):
    """A ServerThread on a port chosen once: stop it and start another on the same port, and
    a client meets a server that restarted (every session forgotten)."""

    def __init__(self, port: int, settings: Settings, *, endpoint: Endpoint | None = None) -> None:
        super().__init__(settings, endpoint=endpoint)
        self.fixed_port = port

    async def _serve(self) -> None:
        # ServerThread._serve, on self.fixed_port rather than a free one.
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sockets = tornado.netutil.bind_sockets(self.fixed_port, "127.0.0.1")
        self.port = self.fixed_port
        listener = self.listener = self.endpoint.listener(self.path)
        listener.add_sockets(sockets)
        self.endpoint.start()
        self._ready.set()
        await self._stop.wait()
        listener.stop()
        await self.endpoint.shutdown(timeout=2.0)

    def stop(self) -> None:
        """ServerThread.stop, once: a test stops it mid-way and again in its cleanup."""
        if self._thread is not None and self._thread.is_alive():
            super().stop()
