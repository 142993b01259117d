"""What an adapter adds to a long-polling request, without any I/O: the requests of
benchmarks/requests.py (a publish to the client's own channel, then the connect it answers)
through `Endpoint.asgi()` with ASGI messages made here, and through the aiohttp handler with
a request made here, against the same requests through `PollingExchange` alone
(benchmarks/exchange.py's measure). The host's own work (parsing, routing, writing) is not in
it: benchmarks/requests.py measures hosts whole.

    .venv/bin/python benchmarks/adapter_exchange.py
    .venv/bin/python benchmarks/adapter_exchange.py --only asgi --rounds 2000  # under callgrind

Each request carries the headers Node's http module sends (benchmarks/bayeux_http.mjs).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402
from bayeux.transports.http import HttpRequest  # noqa: E402
from bayeux.transports.polling import PollingExchange  # noqa: E402

HOST = "127.0.0.1:8080"


def settings() -> Settings:
    # As benchmarks/servers.py's hosts run: every client from one address, no browser cookie
    # sent back (the load generator keeps none).
    return Settings(max_sessions_per_browser=-1, max_handshakes_per_address=-1)


def node_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"host", HOST.encode()),
        (b"connection", b"keep-alive"),
    ]


Post = Callable[[bytes], Awaitable[bytes]]


class _Made:
    """What the host makes of a request's head, made once per body: the host's work is not
    what is measured (the adapter must not change what it is given, so it can be reused)."""

    def __init__(self, make: Callable[[bytes], Any]) -> None:
        self.make = make
        self.made: dict[bytes, Any] = {}

    def get(self, body: bytes) -> Any:
        if body not in self.made:
            self.made[body] = self.make(body)
        return self.made[body]


def bare(endpoint: Endpoint) -> Post:
    async def post(body: bytes) -> bytes:
        # The standalone connection layer hands over these (http1.py's parser callbacks).
        headers = {k.decode(): v.decode() for k, v in node_headers(body)}
        request = HttpRequest(
            "POST", "/cometd", "", headers, body, "127.0.0.1", header_lines=tuple(headers.items())
        )
        exchange = PollingExchange(endpoint, request)
        assert exchange.early_refusal(len(body)) is None
        response = await exchange.respond()
        assert response is not None and response.status == 200
        return response.body

    return post


def asgi(endpoint: Endpoint) -> Post:
    app = endpoint.asgi()

    def scope_of(body: bytes) -> dict[str, Any]:
        # The scope uvicorn makes for such a request.
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 40000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": "/cometd",
            "raw_path": b"/cometd",
            "query_string": b"",
            "headers": node_headers(body),
            "state": {},
        }

    scopes = _Made(scope_of)

    async def post(body: bytes) -> bytes:
        scope = scopes.get(body)
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200
        return b"".join(m.get("body", b"") for m in sent[1:])

    return post


def aiohttp(endpoint: Endpoint) -> Post:
    from aiohttp import web
    from aiohttp.http import HttpVersion11, RawRequestMessage
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    app = web.Application()
    endpoint.aiohttp_mount(app, "/cometd")
    handler = next(iter(app.router.routes())).handler
    protocol = _Protocol()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def message_of(body: bytes) -> RawRequestMessage:
        # What aiohttp's parser makes of such a request.
        raw = tuple(node_headers(body))
        headers = CIMultiDictProxy(CIMultiDict((k.decode(), v.decode()) for k, v in raw))
        return RawRequestMessage(
            "POST",
            "/cometd",
            HttpVersion11,
            headers,
            raw,
            False,
            None,
            False,
            False,
            URL("/cometd"),
        )

    messages = _Made(message_of)

    async def post(body: bytes) -> bytes:
        message = messages.get(body)
        request = web.Request(message, _Payload(body), protocol, None, task, loop)  # type: ignore[arg-type]
        response = await handler(request)
        assert response.status == 200
        return bytes(response.body)

    return post


class _Transport:
    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return False


class _Protocol:
    transport = _Transport()
    writer = None
    peername = ("127.0.0.1", 40000)
    sockname = ("127.0.0.1", 8080)
    ssl_context = None
    max_field_size = max_line_length = 8190
    max_headers = 128


class _Payload:
    """A request body that is all there at once (aiohttp's StreamReader as the adapter reads it)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def readany(self) -> bytes:
        body, self.body = self.body, b""
        return body

    def at_eof(self) -> bool:
        return not self.body


async def measure(kind: str, rounds: int) -> float:
    endpoint = Endpoint(settings())
    post = {"bare": bare, "asgi": asgi, "aiohttp": aiohttp}[kind](endpoint)
    handshake = {
        "channel": "/meta/handshake",
        "version": "1.0",
        "supportedConnectionTypes": ["long-polling"],
    }
    client_id = orjson.loads(await post(orjson.dumps([handshake])))[0]["clientId"]
    first = {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
    await post(orjson.dumps([{**first, "advice": {"timeout": 0}}]))
    subscribe = {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/b/1"}
    await post(orjson.dumps([subscribe]))
    publish = orjson.dumps([{"channel": "/b/1", "clientId": client_id, "data": {"n": 1}}])
    connect = orjson.dumps([first])
    for _ in range(200):  # warm-up
        await post(publish)
        await post(connect)
    started = time.process_time()
    for _ in range(rounds):
        await post(publish)
        reply = await post(connect)
    seconds = time.process_time() - started
    assert b'"successful":true' in reply
    return seconds / (2 * rounds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--only", choices=["bare", "asgi", "aiohttp"], action="append")
    args = parser.parse_args()
    base = None
    for kind in args.only or ["bare", "asgi", "aiohttp"]:
        micros = asyncio.run(measure(kind, args.rounds))
        base = micros if kind == "bare" else base
        added = f"  (+{micros - base:.1f} us over the exchange alone)" if base is not None else ""
        print(f"{kind:<8} {micros:6.1f} us of CPU per request{added}", flush=True)


if __name__ == "__main__":
    main()
