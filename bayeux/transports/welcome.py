"""What a person sees who opens the endpoint's URL in a browser: a small HTML page naming the
protocol, the transports offered and where the documentation is, instead of the 400 a GET
without Bayeux messages gets.

Every host (the standalone connection layer, Tornado, ASGI, aiohttp) asks `welcome_page`
before handing a GET to the transports, so the page and the rule deciding who gets it live
here once. Only a GET that names `text/html` in its Accept header and carries no Bayeux
message gets it: API clients (a callback-polling GET carries `message`, an EventSource asks
for `text/event-stream`, a WebSocket upgrades) are served as before. The page is the same for
every request: nothing of the request is written into it.
"""

from __future__ import annotations

import base64
import hashlib
import html
from functools import lru_cache

from ..core.settings import Settings
from .http import HttpRequest, HttpResponse, wants_event_stream, wants_websocket

DOCS_URL = "https://github.com/bayeux-server/bayeux/tree/main/docs"
HTML_TYPE = "text/html;charset=utf-8"

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}code{background:#f3f3f3;padding:0 .2em}"
)
# The page's only style, allowed by its hash: no inline script or style of anyone else's runs.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)


def welcome_page(request: HttpRequest, settings: Settings) -> HttpResponse | None:
    """The page for a browser's GET of the endpoint, or None when `request` is not one (it
    then goes to the transports exactly as before).

    Added in version 0.3.0."""
    if request.method != "GET":
        return None
    accept = request.headers.get("accept", "").lower()
    if "text/html" not in accept or not _accepts_html(accept):
        return None
    headers = request.headers
    if wants_websocket(headers) or wants_event_stream(request.method, headers):
        return None
    if request.argument("message") is not None:
        return None
    if request.argument(settings.jsonp_parameter) is not None:
        return None
    return HttpResponse(200, _HEADERS, _body(settings.allowed_transports))


def _accepts_html(accept: str) -> bool:
    """Whether an Accept header (lower case) lists text/html with a quality above zero."""
    for item in accept.split(","):
        media, _, parameters = item.partition(";")
        if media.strip() != "text/html":
            continue
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    return float(value.strip()) > 0
                except ValueError:
                    return False
        return True
    return False


_HEADERS = [
    ("Content-Type", HTML_TYPE),
    ("Content-Security-Policy", _POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
    # The same URL answers API clients otherwise.
    ("Vary", "Accept"),
]


@lru_cache(maxsize=8)
def _body(transports: tuple[str, ...]) -> bytes:
    offered = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in transports)
    docs = html.escape(DOCS_URL, quote=True)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Bayeux endpoint</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Bayeux endpoint</h1>"
        "<p>This URL speaks the <strong>Bayeux 1.0</strong> protocol (CometD): point a Bayeux"
        " client at it (CometD JS, Faye, aiocometd, <code>bayeux.client</code>,"
        " <code>bayeux-client</code>); this page is all a browser gets by opening it.</p>"
        f"<p>Transports offered:</p><ul>{offered}</ul>"
        f'<p>Documentation: <a href="{docs}">{docs}</a></p>'
        "</body></html>\n"
    ).encode()
