"""The standalone server's HTTP listener: Tornado's HTTPServer with the bounds a public server
needs. Applications that embed the endpoint configure their own HTTPServer (see the README)."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import tornado.httpserver
import tornado.iostream
import tornado.web

from .endpoint import Endpoint

log = logging.getLogger("bayeux.listener")


class BoundedHTTPServer(tornado.httpserver.HTTPServer):
    """Closes connections accepted beyond the endpoint's max_connections (HTTP and WebSocket
    together), and times out slow or idle clients."""

    def initialize(  # type: ignore[override]
        self, request_callback: Any, endpoint: Endpoint, **kwargs: Any
    ) -> None:
        self.endpoint = endpoint
        super().initialize(request_callback, **kwargs)

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple) -> None:
        endpoint = self.endpoint
        if endpoint.connections >= endpoint.settings.max_connections:
            endpoint.server.stats.refused["max-connections"] += 1
            stream.close()
            return
        endpoint.connection_opened()
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        # Also called when a connection is handed over to a WebSocket, which counts itself.
        self.endpoint.connection_closed()
        super().on_close(server_conn)


def tls_context(certfile: str, keyfile: str | None, ca_file: str | None) -> ssl.SSLContext:
    """A server TLS context with Python's secure defaults; with `ca_file`, clients must present
    a certificate that CA signed (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    if ca_file:
        context.load_verify_locations(ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def http_server(
    app: tornado.web.Application,
    endpoint: Endpoint,
    *,
    xheaders: bool = False,
    ssl_options: ssl.SSLContext | None = None,
) -> BoundedHTTPServer:
    """The listener; `xheaders` trusts X-Real-IP / X-Forwarded-For and X-Scheme /
    X-Forwarded-Proto from a reverse proxy for the client's address (used by the per-address
    limits) and scheme. Only turn it on behind a proxy that sets them. `ssl_options` serves
    https:// and wss:// (see tls_context)."""
    settings = endpoint.settings
    return BoundedHTTPServer(
        app,
        endpoint=endpoint,
        # Our own limit answers 413; Tornado's must sit above it so it never cuts in first.
        max_body_size=settings.max_message_size + 65536,
        # Tornado uses this both for reading a request's headers and for idle keep-alive.
        idle_connection_timeout=settings.idle_timeout / 1000,
        body_timeout=settings.body_timeout / 1000,
        xheaders=xheaders,
        ssl_options=ssl_options,
    )
