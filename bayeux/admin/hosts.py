"""The admin page on the hosts an application embeds the endpoint in: Tornado, ASGI, aiohttp
(the standalone listener serves it through `Listener(sites=...)`). Each turns its request into
the transports' plain `HttpRequest`, as the endpoint's own adapters do, and writes the
`HttpResponse` the page's site answers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

import tornado.routing
import tornado.web

from ..adapters.asgi import TOO_LARGE, Receive, Scope, Send, read_body, request_of, respond
from ..adapters.requests import redact_for_logs, request_from, send
from ..transports.http import HttpRequest, HttpResponse, refusal
from .api import MAX_BODY

if TYPE_CHECKING:
    import aiohttp.web


class Admin(Protocol):
    """The page's site (site.Admin), as a host sees it."""

    async def respond(self, request: HttpRequest, base: str) -> HttpResponse: ...


class AdminHandler(tornado.web.RequestHandler):
    """Every method at the page's path and below it, answered by the page's site."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, admin: Admin, base: str) -> None:
        self.admin = admin
        self.base = base

    def check_xsrf_cookie(self) -> None:
        """No cookie to check: the API's requests carry the token, or a header no other
        site's page can send (auth.py), whatever the application's xsrf_cookies."""

    async def _answer(self, *args: Any) -> None:
        if len(self.request.body) > MAX_BODY:
            send(self, refusal(413, "body too large"))
            return
        request = request_from(self.request, self.request.body, handler=self)
        redact_for_logs(self, request)  # a search may name a clientId
        send(self, await self.admin.respond(request, self.base))

    get = head = post = put = delete = patch = options = _answer


def tornado_rules(admin: Admin, base: str) -> list[tornado.routing.Rule]:
    pattern = re.escape(base) + r"(?:/.*)?$"
    return [
        tornado.routing.Rule(
            tornado.routing.PathMatches(pattern), AdminHandler, {"admin": admin, "base": base}
        )
    ]


class AdminAsgi:
    """The page as an ASGI application (HTTP only; a WebSocket is refused)."""

    def __init__(self, admin: Admin, base: str) -> None:
        self.admin = admin
        self.base = base

    def routes(self) -> list[Any]:
        """Starlette (and FastAPI) routes serving the page at its path and below it (a bare
        `Mount` would redirect the path itself to `path/`)."""
        from starlette.routing import Mount, Route

        return [Route(self.base, self), Mount(self.base, app=self)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if kind != "http":
            return
        request = request_of(scope)
        if not request.path.startswith(self.base):
            # Mounted (Starlette's Mount): the mount's path is in root_path.
            request.path = str(scope.get("root_path") or "") + request.path
        body = await read_body(receive, MAX_BODY)
        if body is None:
            return  # the client left
        if body is TOO_LARGE:
            await respond(send, refusal(413, "body too large"))
            return
        request.body = body
        await respond(send, await self.admin.respond(request, self.base))


def aiohttp_routes(admin: Admin, app: aiohttp.web.Application, base: str) -> None:
    from aiohttp import web

    from ..adapters.aiohttp import request_of as aiohttp_request
    from ..adapters.aiohttp import response_of

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return response_of(refusal(413, "body too large"))
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return response_of(refusal(413, "body too large"))
        plain = aiohttp_request(request)
        plain.body = body
        return response_of(await admin.respond(plain, base))

    app.router.add_route("*", base, handle)
    app.router.add_route("*", base + "/{rest:.*}", handle)
