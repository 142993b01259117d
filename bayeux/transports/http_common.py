"""What the HTTP transports share: which origins may use the endpoint, the CORS headers that say
so, and request lines that are safe to log."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import tornado.httputil
import tornado.web

if TYPE_CHECKING:
    from ..endpoint import Endpoint

# Request headers a cross-origin client may send (the preflight answer is this fixed list, never
# an echo of what was asked): what the CometD and Faye clients use, and common auth headers.
CORS_REQUEST_HEADERS = (
    "Accept, Authorization, Cache-Control, Content-Type, Pragma, X-Requested-With"
)

# A path segment that may be a clientId (EventSource URLs carry one): 16+ hex digits.
_SECRET_SEGMENT = re.compile(r"^[0-9a-fA-F]{16,}$")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")


def page_origin(request: tornado.httputil.HTTPServerRequest) -> str | None:
    """The origin of the page that made the request: `Origin`, or for requests browsers send
    without it (a JSONP script tag), the origin part of `Referer`."""
    origin = request.headers.get("Origin")
    if origin:
        return origin
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def origin_refused(handler: tornado.web.RequestHandler, endpoint: Endpoint) -> bool:
    """Whether the request comes from a page of an origin the endpoint does not allow.
    Requests that name no origin (non-browser clients) are allowed."""
    origin = page_origin(handler.request)
    return origin is not None and not endpoint.origin_allowed(origin, handler.request.host)


def allow_origin(handler: tornado.web.RequestHandler, endpoint: Endpoint) -> None:
    """CORS headers for an allowed Origin: echoed (never `*`) so credentials are accepted."""
    origin = handler.request.headers.get("Origin")
    if origin and endpoint.origin_allowed(origin, handler.request.host):
        handler.set_header("Access-Control-Allow-Origin", origin)
        handler.set_header("Access-Control-Allow-Credentials", "true")
        handler.add_header("Vary", "Origin")


def log_safe_uri(request: tornado.httputil.HTTPServerRequest) -> str:
    """The request's path with clientIds masked and no query values (a JSONP query carries the
    messages, clientId included), with nothing unprintable in it."""
    segments = ["<id>" if _SECRET_SEGMENT.match(s) else s for s in request.path.split("/")]
    uri = "/".join(segments)
    if request.query_arguments:
        uri += "?" + "&".join(f"{name}=..." for name in request.query_arguments)
    return _UNPRINTABLE.sub(lambda m: f"%{ord(m.group()):02X}", uri)[:256]


def redact_for_logs(request: tornado.httputil.HTTPServerRequest) -> None:
    """Makes Tornado's access and error logs show the log-safe request line. Called once the
    handler has read what it needs from the URI (query arguments are parsed already)."""
    request.uri = log_safe_uri(request)
