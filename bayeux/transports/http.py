"""HTTP as the Bayeux transports see it, whoever parsed it: a request and a response as plain
values, which origins may use the endpoint, the CORS headers that say so, and request lines that
are safe to log. The standalone connection layer and the Tornado adapters both build an
`HttpRequest` and write the `HttpResponse` a transport returns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..core.context import RequestContext, ResponseHeaders, cookies_in
from ..core.settings import Settings
from .context import Context

JSON_TYPE = "application/json;charset=utf-8"
TEXT_TYPE = "text/plain;charset=utf-8"

# Request headers a cross-origin client may send (the preflight answer is this fixed list, never
# an echo of what was asked): what the CometD and Faye clients use, and common auth headers.
CORS_REQUEST_HEADERS = (
    "Accept, Authorization, Cache-Control, Content-Type, Pragma, X-Requested-With"
)

# A path segment that may be a clientId (EventSource URLs carry one): 16+ hex digits.
_SECRET_SEGMENT = re.compile(r"^[0-9a-fA-F]{16,}$")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")

Headers = list[tuple[str, str]]


@dataclass(slots=True)
class HttpRequest:
    """One request. Header names are lower case; a repeated header's values are joined by ", "."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    remote_ip: str | None = None
    # Every header line as received (names lower case), for the request context.
    header_lines: tuple[tuple[str, str], ...] = ()
    scheme: str = "http"
    local_ip: str | None = None
    client_certificate: Mapping[str, Any] | None = None
    # Embedded in Tornado: the handler serving the request.
    handler: object | None = None
    # Its browser (see `identify_browser`), and whether it sent its browser cookie.
    browser: str | None = None
    browser_sent: bool = False
    # What hooks add to the response (core/context.py), when they add something.
    response_headers: ResponseHeaders | None = None
    _arguments: dict[str, list[str]] | None = None

    def browser_cookie(self, browser: str, settings: Settings) -> str:
        """The Set-Cookie value that gives this request's client its browser id."""
        parts = [f"{settings.browser_cookie}={browser}", "Path=/", "HttpOnly"]
        secure = settings.browser_cookie_secure
        if secure == "on" or (secure == "auto" and self.scheme == "https"):
            parts.append("Secure")
        if settings.browser_cookie_same_site:
            parts.append(f"SameSite={settings.browser_cookie_same_site}")
        if settings.browser_cookie_domain:
            parts.append(f"Domain={settings.browser_cookie_domain}")
        if settings.browser_cookie_max_age >= 0:
            parts.append(f"Max-Age={settings.browser_cookie_max_age}")
        if settings.browser_cookie_partitioned:
            parts.append("Partitioned")
        return "; ".join(parts)

    def identify_browser(self, cookie_name: str) -> str | None:
        """The browser this request comes from, by its cookie `cookie_name` (a well-formed
        one); None when it sent none, or when browser cookies are off (empty name)."""
        if not cookie_name:
            return None
        browser = self.cookie(cookie_name)
        if browser is None or not browser.isalnum() or len(browser) > 64:
            return None
        self.browser, self.browser_sent = browser, True
        return browser

    def context(self, connection_type: str, *, answered: bool = False) -> RequestContext:
        """The request as hooks see it (core/context.py); `answered` when its own HTTP
        response carries the replies, so that hooks may add headers to it."""
        return RequestContext(self, connection_type, answered)

    @property
    def host(self) -> str | None:
        return self.headers.get("host")

    def argument(self, name: str) -> str | None:
        """The last value of query parameter `name`."""
        if self._arguments is None:
            self._arguments = parse_qs(self.query, keep_blank_values=True)
        values = self._arguments.get(name)
        return values[-1] if values else None

    def cookie(self, name: str) -> str | None:
        """The value of the first cookie called `name` (browsers send the one with the most
        specific path first, RFC 6265 5.4), without surrounding quotes; None if absent."""
        header = self.headers.get("cookie")
        return cookies_in([header]).get(name) if header else None

    def log_safe_uri(self) -> str:
        """The path with clientIds masked, query values left out and nothing unprintable:
        a JSONP query carries messages, clientIds included."""
        segments = ["<id>" if _SECRET_SEGMENT.match(s) else s for s in self.path.split("/")]
        uri = "/".join(segments)
        if self.query:
            names = parse_qs(self.query, keep_blank_values=True)
            uri += "?" + "&".join(f"{name}=..." for name in names)
        return _UNPRINTABLE.sub(lambda m: f"%{ord(m.group()):02X}", uri)[:256]


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    # Close the connection after this response (refusals whose body may not have been read).
    close: bool = False


def refusal(status: int, reason: str, cors: Headers | None = None) -> HttpResponse:
    """A plain-text error answer; the connection closes after it, as the request's body may
    still be on its way."""
    headers = [*(cors or []), ("Content-Type", TEXT_TYPE)]
    return HttpResponse(status, headers, reason.encode() + b"\n", close=True)


def wants_websocket(headers: dict[str, str]) -> bool:
    return headers.get("upgrade", "").lower() == "websocket"


def wants_event_stream(method: str, headers: dict[str, str]) -> bool:
    return method == "GET" and "text/event-stream" in headers.get("accept", "")


def page_origin(request: HttpRequest) -> str | None:
    """The origin of the page that made the request: `Origin`, or for requests browsers send
    without it (a JSONP script tag), the origin part of `Referer`."""
    origin = request.headers.get("origin")
    if origin:
        return origin
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def origin_refused(request: HttpRequest, context: Context, *, readable: bool = False) -> bool:
    """Whether the request comes from a page of an origin the endpoint does not allow.

    Requests that name no origin (non-browser clients) are allowed, except `readable` ones:
    answers a cross-site page can read without CORS (a JSONP script, an event stream). A page
    with `Referrer-Policy: no-referrer` sends a script tag's request with neither Origin nor
    Referer, so such a request counts as coming from the opaque origin `null`: refused unless
    every origin is allowed (or `null` is listed)."""
    origin = page_origin(request)
    if origin is None:
        return readable and not context.origin_allowed("null")
    return not context.origin_allowed(origin, request.host)


def cors_headers(request: HttpRequest, context: Context) -> Headers:
    """CORS headers for an allowed Origin: echoed (never `*`) so credentials are accepted."""
    origin = request.headers.get("origin")
    if origin and context.origin_allowed(origin, request.host):
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]
    return []
