"""Between Tornado's request and response objects and the transports' plain values."""

from __future__ import annotations

from typing import Any

import tornado.httputil
import tornado.web

from ..transports.http import HttpRequest, HttpResponse


def request_from(
    request: tornado.httputil.HTTPServerRequest,
    body: bytes = b"",
    handler: tornado.web.RequestHandler | None = None,
) -> HttpRequest:
    headers: dict[str, str] = {}
    lines: list[tuple[str, str]] = []
    for name, value in request.headers.get_all():
        key = name.lower()
        lines.append((key, value))
        previous = headers.get(key)
        headers[key] = value if previous is None else f"{previous}, {value}"
    return HttpRequest(
        method=request.method or "GET",
        path=request.path,
        query=request.query,
        headers=headers,
        body=body,
        remote_ip=request.remote_ip,
        header_lines=tuple(lines),
        scheme=request.protocol,  # with the HTTPServer's xheaders, as the proxy says
        local_ip=_local_ip(request),
        client_certificate=_certificate(request),
        handler=handler,
    )


def _local_ip(request: tornado.httputil.HTTPServerRequest) -> str | None:
    stream = getattr(request.connection, "stream", None)
    sock = getattr(stream, "socket", None)
    try:
        name = sock.getsockname() if sock is not None else None
    except OSError:
        return None
    return str(name[0]) if isinstance(name, tuple) and name else None


def _certificate(request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
    try:
        certificate = request.get_ssl_certificate()
    except (AttributeError, ValueError):  # not TLS, or no certificate asked for
        return None
    return dict(certificate) if isinstance(certificate, dict) and certificate else None


def redact_for_logs(handler: tornado.web.RequestHandler, request: HttpRequest) -> None:
    """Makes Tornado's access and error logs show the log-safe request line (clientIds masked,
    no query values). Called once the handler has read what it needs from the URI."""
    handler.request.uri = request.log_safe_uri()


def send(handler: tornado.web.RequestHandler, response: HttpResponse) -> None:
    """Writes `response` through the handler and finishes it."""
    handler.set_status(response.status)
    seen: set[str] = set()
    for name, value in response.headers:
        # A name's first line replaces Tornado's default; its next lines (cookies, headers a
        # hook added twice) are kept beside it.
        if name.lower() in seen:
            handler.add_header(name, value)
        else:
            seen.add(name.lower())
            handler.set_header(name, value)
    if response.close:
        handler.set_header("Connection", "close")
    handler.finish(response.body or None)
