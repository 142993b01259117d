"""Between Tornado's request and response objects and the transports' plain values."""

from __future__ import annotations

import tornado.httputil
import tornado.web

from ..transports.http import HttpRequest, HttpResponse


def request_from(request: tornado.httputil.HTTPServerRequest, body: bytes = b"") -> HttpRequest:
    headers: dict[str, str] = {}
    for name, value in request.headers.get_all():
        key = name.lower()
        previous = headers.get(key)
        headers[key] = value if previous is None else f"{previous}, {value}"
    return HttpRequest(
        method=request.method or "GET",
        path=request.path,
        query=request.query,
        headers=headers,
        body=body,
        remote_ip=request.remote_ip,
    )


def redact_for_logs(handler: tornado.web.RequestHandler, request: HttpRequest) -> None:
    """Makes Tornado's access and error logs show the log-safe request line (clientIds masked,
    no query values). Called once the handler has read what it needs from the URI."""
    handler.request.uri = request.log_safe_uri()


def send(handler: tornado.web.RequestHandler, response: HttpResponse) -> None:
    """Writes `response` through the handler and finishes it."""
    handler.set_status(response.status)
    for name, value in response.headers:
        if name == "Set-Cookie":
            handler.add_header(name, value)
        else:
            handler.set_header(name, value)
    if response.close:
        handler.set_header("Connection", "close")
    handler.finish(response.body or None)
