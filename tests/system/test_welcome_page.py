"""A browser's GET of the endpoint gets a small HTML page (transports/welcome.py) from every
host: the standalone server, Tornado, ASGI under uvicorn, aiohttp. API clients are served as
before, and hostile GETs get no 500."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeux import Endpoint, Settings
from bayeux.testing import AiohttpThread, AsgiThread, ServerThread
from bayeux.transports.http import HttpRequest
from bayeux.transports.welcome import DOCS_URL, welcome_page

from ..helpers.http import post_json, request
from ..helpers.rawws import RawWebSocket
from ..helpers.servers import HANDSHAKE, ROOT

BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)
NO_MESSAGE = b"expected a POST of Bayeux messages, or a GET with a 'message' parameter"
HOSTS = ["standalone", "tornado", "asgi", "aiohttp"]
TRANSPORTS = ("long-polling", "websocket", "callback-polling")


def start(host: str, settings: Settings) -> ServerThread | AsgiThread:
    endpoint = Endpoint(settings)
    if host == "standalone":
        return ServerThread(endpoint=endpoint, embedded=False).start()
    if host == "tornado":
        return ServerThread(endpoint=endpoint, embedded=True).start()
    if host == "asgi":
        return AsgiThread(endpoint=endpoint, host="uvicorn").start()
    return AiohttpThread(endpoint=endpoint).start()


@pytest.fixture(params=HOSTS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerThread | AsgiThread]:
    served = start(request.param, Settings(allowed_transports=TRANSPORTS, timeout=1000))
    try:
        yield served
    finally:
        served.stop()


def the_page(transports: tuple[str, ...] = TRANSPORTS) -> bytes:
    """What transports/welcome.py makes, asked directly."""
    asked = HttpRequest("GET", "/cometd", headers={"accept": "text/html"})
    page = welcome_page(asked, Settings(allowed_transports=transports))
    assert page is not None
    return page.body


def test_a_browser_gets_the_page_from_every_host(server: ServerThread | AsgiThread) -> None:
    response = request(server.url, "GET", headers={"Accept": BROWSER_ACCEPT})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html;charset=utf-8"
    # One place makes it: every host sends the same bytes.
    assert response.body == the_page()
    text = response.body.decode()
    assert "Bayeux 1.0" in text
    offered = re.findall(r"<li><code>([^<]*)</code></li>", text)
    assert offered == list(TRANSPORTS)  # the server's allowed_transports, in order
    assert f'<a href="{DOCS_URL}">' in text
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script" not in text.lower()
    # The page's one style is allowed by its hash, so a browser applies it and nothing else.
    (style,) = re.findall(r"<style>(.*?)</style>", text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Vary"] == "Accept"
    # Below the mount too: the CometD JS client's sub-paths.
    below = request(server.url, "GET", headers={"Accept": "text/html"}, path="/handshake")
    assert below.status == 200 and below.body == response.body


def test_the_docs_link_points_into_the_project_repository() -> None:
    repo_url = re.search(r"^repo_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert repo_url is not None and DOCS_URL.startswith(repo_url.group(1) + "/")


def test_api_requests_are_served_as_before(server: ServerThread | AsgiThread) -> None:
    url = server.url
    # A GET that does not ask for HTML: the 400 it always got.
    for accept in (None, "*/*", "application/json", "text/html;q=0", "text/htmlx"):
        headers = {"Accept": accept} if accept is not None else {}
        plain = request(url, "GET", headers=headers)
        assert plain.status == 400 and plain.body.startswith(NO_MESSAGE), (accept, plain.body)
    # Callback-polling is a GET with `message` (and a callback name): served as JSONP even
    # when the Accept header names HTML.
    message = "%5B%7B%22channel%22%3A%22%2Fmeta%2Fhandshake%22%2C%22version%22%3A%221.0%22%2C"
    message += "%22supportedConnectionTypes%22%3A%5B%22callback-polling%22%5D%7D%5D"
    jsonp = request(url + f"?jsonp=cb&message={message}", "GET", headers={"Accept": BROWSER_ACCEPT})
    assert jsonp.status == 200, jsonp.body
    assert jsonp.headers["Content-Type"].startswith("text/javascript")
    assert jsonp.body.startswith(b"/**/cb(") and b'"successful":true' in jsonp.body
    # A callback name without a message: the 400 it always got, not the page.
    named = request(url + "?jsonp=cb", "GET", headers={"Accept": BROWSER_ACCEPT})
    assert named.status == 400 and named.body.startswith(NO_MESSAGE)
    # Long-polling POSTs are not GETs.
    posted = post_json(url, [HANDSHAKE], headers={"Accept": "text/html"})
    assert posted.status == 200 and posted.json()[0]["successful"] is True
    # An EventSource GET asks for text/event-stream: the transport answers (an unknown client).
    stream = request(
        url,
        "GET",
        path="/" + "ab" * 16,
        headers={"Accept": "text/event-stream, text/html"},
    )
    assert stream.status == 404 and not stream.body.startswith(b"<!doctype")


def test_a_websocket_upgrade_naming_html_still_upgrades(server: ServerThread | AsgiThread) -> None:
    ws = RawWebSocket(server.url, headers=f"Accept: {BROWSER_ACCEPT}\r\n")
    try:
        assert b" 101 " in ws.status_line, ws.status_line
        ws.send([{**HANDSHAKE, "supportedConnectionTypes": ["websocket"]}])
        (reply,) = ws.read()
        assert reply["successful"] is True
    finally:
        ws.sock.close()


def raw_get(url: str, target: str, headers: str) -> int:
    """The status of a GET of `target` sent as is (0 if the server closed without one)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            "Connection: close\r\n\r\n".encode("latin-1")
        )
        status_line = sock.makefile("rb").readline()
    fields = status_line.split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


HOSTILE_ACCEPTS = [
    "text/html;q=" + "9" * 4000,
    "text/html;q=abc",
    "text/html;q=nan",
    "text/html;q=-1, text/html;q=inf",
    "," * 6000 + "text/html",
    "text/html;" + ";" * 6000,
    ("application/json, " * 400) + "text/html",
    "TEXT/HTML",
    "text/html\x01",
]
ODD_PATHS = [
    "/cometd/../../etc/passwd",
    "/cometd/%00%ff",
    "/cometd//",
    "/cometd/" + "a" * 4000,
    "/cometd/<script>alert(1)</script>",
    "/cometd?%zz=%zz&message",
    "/cometd?" + "x=1&" * 500,
]


def test_hostile_gets_get_no_500(server: ServerThread | AsgiThread) -> None:
    statuses = []
    for accept in HOSTILE_ACCEPTS:
        statuses.append(raw_get(server.url, "/cometd", f"Accept: {accept}\r\n"))
    for path in ODD_PATHS:
        statuses.append(raw_get(server.url, path, f"Accept: {BROWSER_ACCEPT}\r\n"))
    # A huge Accept header: each host refuses it its own way, never with a 500.
    statuses.append(raw_get(server.url, "/cometd", f"Accept: text/html{',' * 60000}\r\n"))
    assert all(0 < status < 500 for status in statuses), statuses
    # And the server still serves.
    after = request(server.url, "GET", headers={"Accept": "text/html"})
    assert after.status == 200 and after.body == the_page()


@settings(max_examples=300, deadline=None)
@given(
    path=st.text(max_size=200),
    query=st.text(max_size=200),
    accept=st.text(max_size=200),
    host=st.text(max_size=100),
)
def test_the_page_reflects_nothing_of_the_request(
    path: str, query: str, accept: str, host: str
) -> None:
    asked = HttpRequest(
        "GET",
        "/cometd/" + path,
        query=query,
        headers={"accept": "text/html, " + accept, "host": host},
    )
    page = welcome_page(asked, Settings(allowed_transports=TRANSPORTS))
    if page is not None:
        assert page.status == 200 and page.body == the_page()


def test_only_a_get_naming_html_without_a_message_gets_the_page() -> None:
    allowed = Settings()

    def page_for(method: str = "GET", query: str = "", **headers: str) -> bool:
        asked = HttpRequest(method, "/cometd", query=query, headers=headers)
        return welcome_page(asked, allowed) is not None

    assert page_for(accept="text/html")
    assert page_for(accept="application/json;q=0.5, text/html;q=0.1")
    assert not page_for(accept="text/html;q=0")
    assert not page_for(accept="*/*")
    assert not page_for("POST", accept="text/html")
    assert not page_for("HEAD", accept="text/html")
    assert not page_for(query="message=%5B%5D", accept="text/html")
    assert not page_for(query="jsonp=cb", accept="text/html")
    assert not page_for(accept="text/html", upgrade="websocket")
    assert not page_for(accept="text/event-stream, text/html")
    renamed = Settings(jsonp_parameter="callback")
    asked = HttpRequest("GET", "/cometd", query="callback=cb", headers={"accept": "text/html"})
    assert welcome_page(asked, renamed) is None
