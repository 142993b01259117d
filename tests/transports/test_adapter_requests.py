"""What the ASGI and aiohttp adapters make of a request and a response, driven directly (no
host): header names lower case whatever the host gave, a repeated header's lines kept for the
request context and its values joined (cookies with "; ", as the standalone server joins them),
a body sent in several messages read whole, and a whole response sent with its length."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import make_mocked_request
from fastapi import FastAPI, WebSocket
from multidict import CIMultiDict

from bayeux import Endpoint, Settings
from bayeux.adapters import aiohttp as aiohttp_adapter
from bayeux.adapters import asgi as asgi_adapter
from bayeux.transports.http import HttpResponse

from ..helpers.servers import HANDSHAKE

Message = dict[str, Any]
BROWSER = "BAYEUX_BROWSER"


def scope(headers: list[tuple[bytes, bytes]], method: str = "POST") -> Message:
    return {
        "type": "http",
        "method": method,
        "path": "/cometd",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Host:
    """The host's side of one request: what the app receives, and what it sent."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0) if self.incoming else {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(dict(message))

    def start(self) -> Message:
        return next(m for m in self.sent if m["type"] == "http.response.start")

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def test_a_whole_response_is_sent_with_its_length_not_in_chunks() -> None:
    async def scenario() -> None:
        app = Endpoint().asgi()
        body = json.dumps([HANDSHAKE]).encode()
        host = Host({"type": "http.request", "body": body})
        await app(scope([(b"content-type", b"application/json")]), host.receive, host.send)
        headers = dict(host.start()["headers"])
        assert host.start()["status"] == 200
        assert headers[b"content-length"] == str(len(host.body())).encode()
        assert b"transfer-encoding" not in headers
        assert json.loads(host.body())[0]["successful"] is True

        # A 204 (a CORS preflight) has no body, and so no length.
        preflight = Host({"type": "http.request", "body": b""})
        origin = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
        await app(scope(origin, method="OPTIONS"), preflight.receive, preflight.send)
        assert preflight.start()["status"] == 204
        assert b"content-length" not in dict(preflight.start()["headers"])

    asyncio.run(scenario())


def test_a_body_in_several_messages_is_read_whole() -> None:
    async def scenario() -> None:
        app = Endpoint().asgi()
        body = json.dumps([HANDSHAKE]).encode()
        pieces = [body[:10], body[10:20], body[20:]]
        host = Host(
            *({"type": "http.request", "body": p, "more_body": True} for p in pieces[:-1]),
            {"type": "http.request", "body": pieces[-1], "more_body": False},
        )
        await app(scope([(b"content-type", b"application/json")]), host.receive, host.send)
        assert json.loads(host.body())[0]["successful"] is True

    asyncio.run(scenario())


def test_asgi_header_names_come_lower_case_whatever_the_host_sends() -> None:
    # ASGI asks hosts for lower-case names; one that sends others is still read right, and
    # so are more distinct names than the adapters remember.
    many = [(f"X-Name-{i}".encode(), str(i).encode()) for i in range(300)]
    request = asgi_adapter.request_of(scope([(b"Content-Type", b"application/json"), *many]))
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-name-299"] == "299"
    assert len(request.headers) == 301


def test_asgi_repeated_headers_keep_their_lines_and_join_cookies_as_cookies() -> None:
    request = asgi_adapter.request_of(
        scope(
            [
                (b"cookie", b"app=1"),
                (b"accept", b"text/html"),
                (b"cookie", f"{BROWSER}=abc123".encode()),
                (b"accept", b"application/json"),
            ]
        )
    )
    # HTTP/2 clients send each cookie on a line of its own: the browser's is still found.
    assert request.headers["cookie"] == f"app=1; {BROWSER}=abc123"
    assert request.identify_browser(BROWSER) == "abc123"
    assert request.headers["accept"] == "text/html, application/json"
    context = request.context("long-polling")
    assert context.header_values("cookie") == ["app=1", f"{BROWSER}=abc123"]
    assert context.cookies == {"app": "1", BROWSER: "abc123"}
    assert [name for name, _ in context.headers] == ["cookie", "accept", "cookie", "accept"]


def test_asgi_headers_without_repeats_are_every_line_for_the_request_context() -> None:
    lines = [(b"host", b"example.com"), (b"x-app", b"demo"), (b"cookie", b"app=1")]
    request = asgi_adapter.request_of(scope(lines))
    context = request.context("long-polling")
    assert context.headers == (("host", "example.com"), ("x-app", "demo"), ("cookie", "app=1"))
    assert context.header("X-App") == "demo"
    assert context.cookie("app") == "1"


def test_aiohttp_repeated_headers_keep_their_lines_and_join_cookies_as_cookies() -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    headers.add("Cookie", "app=1")
    headers.add("Host", "example.com")
    headers.add("Cookie", f"{BROWSER}=abc123")
    request = aiohttp_adapter.request_of(make_mocked_request("POST", "/cometd", headers=headers))
    assert request.headers["cookie"] == f"app=1; {BROWSER}=abc123"
    assert request.headers["host"] == "example.com"
    assert request.identify_browser(BROWSER) == "abc123"
    context = request.context("long-polling")
    assert context.header_values("cookie") == ["app=1", f"{BROWSER}=abc123"]
    assert context.headers == (
        ("cookie", "app=1"),
        ("host", "example.com"),
        ("cookie", f"{BROWSER}=abc123"),
    )


def test_aiohttp_headers_without_repeats_are_every_line_for_the_request_context() -> None:
    headers = CIMultiDict({"Host": "example.com", "X-App": "demo"})
    request = aiohttp_adapter.request_of(make_mocked_request("GET", "/cometd", headers=headers))
    assert request.headers == {"host": "example.com", "x-app": "demo"}
    assert request.context("long-polling").headers == (
        ("host", "example.com"),
        ("x-app", "demo"),
    )


def test_aiohttp_response_keeps_every_header_line_and_closes_when_asked() -> None:
    response = aiohttp_adapter.response_of(
        HttpResponse(
            400,
            [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Type", "text/plain")],
            b"no\n",
            close=True,
        )
    )
    assert response.status == 400
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["Connection"] == "close"
    assert response.body == b"no\n"


def test_the_browser_cookie_these_tests_send_is_the_default_one() -> None:
    assert Settings().browser_cookie == BROWSER


def test_in_front_of_a_fastapi_application_passes_on_its_lifespan_and_websockets() -> None:
    async def scenario() -> None:
        endpoint = Endpoint()
        events: list[str] = []

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> Any:
            # The endpoint is started before the application's startup, and drained before
            # its shutdown.
            events.append(f"startup, endpoint started: {endpoint.loop_owner.loop is not None}")
            yield
            events.append(f"shutdown, endpoint drained: {endpoint.server.shutting_down}")

        application = FastAPI(lifespan=lifespan)

        @application.get("/api/hello")
        def hello() -> dict[str, str]:
            return {"hello": "world"}

        @application.websocket("/chat")
        async def chat(websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.close()

        app = endpoint.asgi().in_front_of(application, "/cometd", pass_on=True)
        lifespan_events: asyncio.Queue[Message] = asyncio.Queue()
        lifespan_sent: list[Message] = []

        async def lifespan_send(message: MutableMapping[str, Any]) -> None:
            lifespan_sent.append(dict(message))

        assert endpoint.loop_owner.loop is None  # not started before the lifespan's startup
        lifespan_events.put_nowait({"type": "lifespan.startup"})
        running = asyncio.ensure_future(
            app({"type": "lifespan"}, lifespan_events.get, lifespan_send)
        )
        while not lifespan_sent:
            await asyncio.sleep(0.01)
        body = json.dumps([HANDSHAKE]).encode()
        cometd = Host({"type": "http.request", "body": body})
        await app(scope([(b"content-type", b"application/json")]), cometd.receive, cometd.send)
        assert json.loads(cometd.body())[0]["successful"] is True

        own = Host({"type": "http.request", "body": b""})
        request = scope([], method="GET") | {"path": "/api/hello", "headers": []}
        await app(request, own.receive, own.send)
        assert json.loads(own.body()) == {"hello": "world"}

        chat_host = Host({"type": "websocket.connect"}, {"type": "websocket.disconnect"})
        socket = scope([]) | {"type": "websocket", "path": "/chat", "subprotocols": []}
        await app(socket, chat_host.receive, chat_host.send)
        assert chat_host.sent[0]["type"] == "websocket.accept"  # passed on, not refused

        lifespan_events.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait_for(running, 5)
        assert [m["type"] for m in lifespan_sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert events == ["startup, endpoint started: True", "shutdown, endpoint drained: True"]

    asyncio.run(scenario())
