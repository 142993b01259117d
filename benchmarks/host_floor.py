"""The floor of each host: what an ASGI server, FastAPI or aiohttp costs per long-polling
request when the application does no Bayeux work at all. The application reads the body,
decodes it and answers with a fixed JSON reply (a successful handshake for /handshake, a
successful connect otherwise: http_floor.py's answers), so that the load generator of
benchmarks/requests.py runs against it unchanged. benchmarks/servers.py runs it as
floor-uvicorn, floor-fastapi, floor-fastapi-standard, floor-granian and floor-aiohttp, under the
same hosts and options as the bayeux-* servers: a host's requests per CPU-second here bound what
the endpoint can reach in it, and the difference to the bayeux-* figure is the endpoint's work.

    .venv/bin/python benchmarks/requests.py --server floor-uvicorn --server bayeux-asgi
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_floor import HANDSHAKE, SUCCESS  # type: ignore  # noqa: E402

Message = MutableMapping[str, Any]
_HEADERS = [(b"content-type", b"application/json;charset=utf-8")]


async def app(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Any]
) -> None:
    """The fixed answers as an ASGI application (floor-uvicorn, floor-granian)."""
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    orjson.loads(b"".join(chunks))
    reply = HANDSHAKE if scope["path"].endswith("/handshake") else SUCCESS
    headers = [*_HEADERS, (b"content-length", b"%d" % len(reply))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


def fastapi_app() -> Any:
    """The same answers from a FastAPI application, mounted as the endpoint is (a Route and a
    Mount at /cometd, first), next to a route of its own."""
    from fastapi import FastAPI
    from starlette.routing import Mount, Route

    class Answers:
        """`app` as an object: Starlette takes a plain function for a request handler."""

        async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
            await app(scope, receive, send)

    answers = Answers()
    fastapi = FastAPI()
    fastapi.router.routes[:0] = [Route("/cometd", answers), Mount("/cometd", app=answers)]

    @fastapi.get("/api/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return fastapi


def aiohttp_main(port: int) -> None:
    """The same answers from an aiohttp application (floor-aiohttp)."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        orjson.loads(await request.read())
        reply = HANDSHAKE if request.path.endswith("/handshake") else SUCCESS
        return web.Response(body=reply, content_type="application/json")

    application = web.Application()
    application.router.add_route("*", "/cometd", answer)
    application.router.add_route("*", "/cometd/{tail:.*}", answer)
    web.run_app(application, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    aiohttp_main(int(sys.argv[1]))
