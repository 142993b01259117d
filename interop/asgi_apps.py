"""Applications of other frameworks that mount the endpoint, as a team's own would: a FastAPI
application, a Starlette one and an aiohttp one, each with a route of its own next to `/cometd`
and, for the browser runs, the pages and client libraries served as static files."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bayeux import Endpoint

from .conftest import INTEROP

STATIC = {
    "/cometd-js": INTEROP / "node_modules" / "cometd",
    "/scenarios": INTEROP / "scenarios",
    "/faye-js": INTEROP / "node_modules" / "faye" / "client",
}


def fastapi_app(endpoint: Endpoint) -> Any:
    app = FastAPI()

    @app.get("/api/hello")
    def hello() -> dict[str, str]:  # the application's own route
        return {"hello": "from fastapi"}

    app.router.routes.extend(endpoint.asgi().routes("/cometd"))
    for path, directory in STATIC.items():
        app.mount(path, StaticFiles(directory=directory))
    app.mount("/", StaticFiles(directory=INTEROP / "browser", html=True))
    return app


def starlette_app(endpoint: Endpoint) -> Any:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"hello": "from starlette"})

    routes = [
        Route("/api/hello", hello),
        *endpoint.asgi().routes("/cometd"),
        *(Mount(path, app=StaticFiles(directory=d)) for path, d in STATIC.items()),
        Mount("/", app=StaticFiles(directory=INTEROP / "browser", html=True)),
    ]
    return Starlette(routes=routes)


def aiohttp_app(endpoint: Endpoint) -> Any:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "from aiohttp"})

    app = web.Application()
    app.router.add_get("/api/hello", hello)
    endpoint.aiohttp_mount(app, "/cometd")
    for path, directory in STATIC.items():
        app.router.add_static(path, directory)
    pages = {"/": "index.html", "/client.html": "client.html", "/faye.html": "faye.html"}

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(INTEROP / "browser" / pages[request.path])

    for path in pages:
        app.router.add_get(path, page)
    return app


FRAMEWORKS = {
    "fastapi-uvicorn": (fastapi_app, "uvicorn"),
    "starlette-hypercorn": (starlette_app, "hypercorn"),
    "aiohttp": (aiohttp_app, "aiohttp"),
}
