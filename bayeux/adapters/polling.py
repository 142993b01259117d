"""long-polling and callback-polling as a Tornado RequestHandler (see transports/polling.py)."""

from __future__ import annotations

from typing import Any

import tornado.http1connection
import tornado.web

from ..transports.context import Context
from ..transports.polling import PollingExchange
from ..transports.welcome import welcome_page
from .requests import redact_for_logs, request_from, send


@tornado.web.stream_request_body
class PollingHandler(tornado.web.RequestHandler):
    exchange_class = PollingExchange

    def initialize(self, context: Context) -> None:
        self.context = context
        self._chunks: list[bytes] = []
        self._size = 0
        self._exchange: PollingExchange | None = None

    def prepare(self) -> None:
        request = request_from(self.request, handler=self)
        redact_for_logs(self, request)
        if request.method == "GET":
            page = welcome_page(request, self.context.settings)
            if page is not None:
                send(self, page)
                return
        self._exchange = exchange = self.exchange_class(self.context, request)
        declared = self.request.headers.get("Content-Length")
        refused = exchange.early_refusal(
            int(declared) if declared is not None and declared.isdigit() else None
        )
        if refused is not None:
            send(self, refused)
            return
        if self.request.method in ("POST", "PUT"):
            # Tornado's own limit sits above ours so that data_received sees the excess first and
            # answers 413; Tornado's would close the connection with a bare 400.
            connection = self.request.connection
            if isinstance(connection, tornado.http1connection.HTTP1Connection):
                connection.set_max_body_size(2 * self.context.settings.max_message_size + 65536)

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self._exchange is None:
            return
        self._size += len(chunk)
        if self._size > self.context.settings.max_message_size:
            send(self, self._exchange.too_large())
            return
        self._chunks.append(chunk)

    async def _respond(self, *args: Any) -> None:
        exchange = self._exchange
        if exchange is None or self._finished:
            return
        exchange.request.body = b"".join(self._chunks)
        response = await exchange.respond()
        if response is not None and not self._finished:
            send(self, response)

    get = post = put = options = delete = patch = _respond

    def on_connection_close(self) -> None:
        # The client dropped a held connect: free it now rather than at timeout.
        if self._exchange is not None:
            self._exchange.connection_lost()
