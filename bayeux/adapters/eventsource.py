"""The eventsource transport as a Tornado RequestHandler (see transports/eventsource.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.routing
import tornado.web

from ..transports.context import Context
from ..transports.eventsource import EventStream, open_stream
from ..transports.http import wants_event_stream
from .requests import redact_for_logs, request_from, send


class EventSourceMatches(tornado.routing.PathMatches):
    """Matches the endpoint's sub-paths for GETs that ask for an event stream."""

    def match(self, request: Any) -> dict[str, Any] | None:
        headers = {"accept": request.headers.get("Accept", "")}
        if not wants_event_stream(request.method, headers):
            return None
        return super().match(request)


class EventSourceHandler(tornado.web.RequestHandler):
    def initialize(self, context: Context) -> None:
        self.context = context
        self._stream: EventStream | None = None

    async def get(self, *args: Any) -> None:
        request = request_from(self.request, handler=self)
        redact_for_logs(self, request)
        head, session = await open_stream(self.context, request)
        if session is None:
            send(self, head)
            return
        self.set_status(head.status)
        for name, value in head.headers:
            self.set_header(name, value)
        self.write(head.body)
        await self.flush()
        self._stream = EventStream(self.context, session, _HandlerSink(self))
        await self._stream.run()
        if not self._finished:
            self.finish()

    def on_connection_close(self) -> None:
        if self._stream is not None:
            self._stream.connection_lost()


class _HandlerSink:
    __slots__ = ("handler",)

    def __init__(self, handler: tornado.web.RequestHandler) -> None:
        self.handler = handler

    def write(self, chunk: bytes) -> asyncio.Future[None] | None:
        self.handler.write(chunk)
        return self.handler.flush()
