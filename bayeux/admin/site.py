"""The admin page as a site: its HTML, script and style (shipped in the package, nothing from
elsewhere), and its API, below one path.

The page itself holds nothing: it is the same for everyone, and shows figures only once its
API answers, which it asks with the token (site.py never sends a figure without it). It takes
the token from its form or from `#token=...` in its URL, which a browser never sends to the
server, and takes that out of the address bar and history once read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from ..transports.http import HttpRequest, HttpResponse
from .api import AdminApi, BadRequest, parameters
from .auth import AdminAuth, AdminAuthorizer, Verdict
from .counting import Sampler
from .deployment import Deployment
from .snapshot import Observed

if TYPE_CHECKING:
    import aiohttp.web
    import tornado.routing

    from .hosts import AdminAsgi

log = logging.getLogger("bayeux.admin")

# A path the page may be served at: it is written into the page, so nothing that needs quoting.
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_ASSETS = {
    "admin.js": "text/javascript;charset=utf-8",
    "admin.css": "text/css;charset=utf-8",
}
_GETS = {"overview", "sessions", "channels", "users"}
_POSTS = {"disconnect", "publish"}
_ALLOWED = {
    "overview": (),
    "sessions": ("q", "sort", "after", "limit"),
    "channels": ("q", "sort", "limit"),
    "users": ("limit",),
}
_COMMON = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
]
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
Answer = Callable[[HttpRequest], Awaitable[HttpResponse]]


def check_path(path: str) -> str:
    """`path` without its trailing slash, if the page may be served there; else ValueError."""
    if not isinstance(path, str) or not _PATH.match(path) or len(path) > 200:
        raise ValueError(
            f"the admin path must start with '/' and hold only A-Z a-z 0-9 . _ ~ - /: {path!r}"
        )
    if "//" in path or {".", ".."} & set(path.split("/")):
        raise ValueError(f"the admin path cannot have empty, . or .. segments: {path!r}")
    trimmed = path.rstrip("/")
    if not trimmed:
        raise ValueError("the admin path cannot be '/'")
    return trimmed


class Admin:
    """The admin page of an endpoint, and its JSON API: who is connected, which channels are
    busy, whose queue is filling; it disconnects a session and publishes a test message.
    Behind `token` (sent by the page as `Authorization: Bearer`), and/or the application's
    own `authorize(request)` check when it is embedded (its login's cookie, say; the page then
    sends the header `X-Bayeux-Admin: 1` with each request, which no other site's page can).
    With a Redis engine it shows every process of the deployment.

    Get it with `Endpoint.admin()`; serve it with the standalone listener
    (`endpoint.listener(admin_path=...)`), in Tornado (`routes`), under ASGI (`asgi`) or in
    aiohttp (`aiohttp_mount`). docs/admin.md has the page, its API and its figures.

    Examples:
        >>> admin = Endpoint().admin("a-long-random-admin-token")
        >>> isinstance(admin, Admin)
        True
        >>> Endpoint().admin("too-short")
        Traceback (most recent call last):
        ValueError: the admin token must be 16 to 256 characters
        >>> Endpoint().admin()
        Traceback (most recent call last):
        ValueError: the admin page needs a token or an authorize function

    Added in version 0.3.0."""

    def __init__(
        self,
        endpoint: Observed,
        *,
        token: str | None = None,
        authorize: AdminAuthorizer | None = None,
    ) -> None:
        self.auth = AdminAuth(token, authorize)
        self.endpoint = endpoint
        self.sampler = Sampler(endpoint.server)
        engine = endpoint.engine
        self.deployment: Deployment | None = None
        if engine is not None and engine.shared:
            from .deployment import deployment_of

            self.deployment = deployment_of(endpoint)
        self.api = AdminApi(endpoint, self.sampler, self.deployment)
        self._page = _read("index.html")
        self._assets = {name: _read(name) for name in _ASSETS}
        self._stopped = False

    @property
    def process(self) -> str:
        """How the page names this process (host:pid).

        Examples:
            >>> import os, socket
            >>> admin = Endpoint().admin("a-long-random-admin-token")
            >>> admin.process == f"{socket.gethostname()}:{os.getpid()}"
            True

        Added in version 0.3.0."""
        return self.api.process.name

    def start(self) -> None:
        """Starts hearing the deployment's asks (with Redis); the endpoint calls it when it
        starts.

        Examples:
            >>> admin = Endpoint().admin("a-long-random-admin-token")
            >>> admin.start()  # without Redis there are no asks to hear: nothing to start
            >>> admin.deployment is None
            True

        Added in version 0.3.0."""
        if self.deployment is not None and not self._stopped:
            self.deployment.start()

    async def stop(self) -> None:
        """Stops counting and hearing asks; the endpoint calls it when it shuts down.

        Examples:
            >>> import asyncio
            >>> endpoint = Endpoint()
            >>> admin = endpoint.admin("a-long-random-admin-token")
            >>> bearer = {"authorization": "Bearer a-long-random-admin-token"}
            >>> asked = HttpRequest("GET", "/admin/api/overview", headers=bearer)
            >>> async def watched_then_stopped():
            ...     await admin.respond(asked, "/admin")  # the page is watched: it counts
            ...     counting = [type(counter).__name__ for counter in endpoint.server.extensions]
            ...     await admin.stop()
            ...     return counting, endpoint.server.extensions
            >>> asyncio.run(watched_then_stopped())
            (['Counting'], [])

        Added in version 0.3.0."""
        self._stopped = True
        self.sampler.stop()
        if self.deployment is not None:
            await self.deployment.stop()

    def at(self, path: str) -> Answer:
        """The function answering every request at `path` and below it (for
        `Listener(sites=...)`).

        Examples:
            >>> import asyncio
            >>> answer = Endpoint().admin("a-long-random-admin-token").at("/admin/")
            >>> page = asyncio.run(answer(HttpRequest("GET", "/admin/")))
            >>> page.status, dict(page.headers)["Content-Type"]
            (200, 'text/html;charset=utf-8')
            >>> asyncio.run(answer(HttpRequest("GET", "/admin/api/sessions"))).status  # no token
            401

        Added in version 0.3.0."""
        base = check_path(path)

        async def answer(request: HttpRequest) -> HttpResponse:
            return await self.respond(request, base)

        return answer

    async def respond(self, request: HttpRequest, base: str) -> HttpResponse:
        """The answer to `request`, for the page served at `base`. Never raises: a failure
        is logged and answered with 500.

        Examples:
            >>> import asyncio, json
            >>> admin = Endpoint().admin("a-long-random-admin-token")
            >>> async def ask(path, token):
            ...     asked = HttpRequest("GET", path, headers={"authorization": f"Bearer {token}"})
            ...     answered = await admin.respond(asked, "/admin")
            ...     return answered.status, json.loads(answered.body)
            >>> asyncio.run(ask("/admin/api/users", "a-long-random-admin-token"))
            (200, {'count': 0, 'users': []})
            >>> asyncio.run(ask("/admin/api/users", "a-wrong-but-long-enough-token"))
            (401, {'error': 'token needed'})

        Added in version 0.3.0."""
        try:
            self.start()  # embedded: the page may be asked before the endpoint is used
            return await self._respond(request, base)
        except Exception:  # never into the host's loop
            log.exception("admin: answering a request failed")
            return _json(500, {"error": "internal error"})

    async def _respond(self, request: HttpRequest, base: str) -> HttpResponse:
        rest = request.path[len(base) :] if request.path.startswith(base) else None
        if rest is None:
            return _json(404, {"error": "not found"})
        method = request.method
        if rest in ("", "/", "/index.html") or rest.removeprefix("/") in _ASSETS:
            if method not in ("GET", "HEAD"):
                return _json(405, {"error": "method not allowed"}, [("Allow", "GET, HEAD")])
            if rest in ("", "/", "/index.html"):
                return self._page_response(base)
            name = rest.removeprefix("/")
            return HttpResponse(
                200, [("Content-Type", _ASSETS[name]), *_COMMON], self._assets[name]
            )
        if not rest.startswith("/api/"):
            return _json(404, {"error": "not found"})
        name = rest.removeprefix("/api/")
        if name not in _GETS and name not in _POSTS:
            return _json(404, {"error": "not found"})
        # Who asks comes first: nothing about the API is said to a stranger.
        verdict = await self._verdict(request)
        if verdict is not Verdict.ALLOWED:
            return _refused(verdict)
        wanted = "GET" if name in _GETS else "POST"
        if method != wanted and not (wanted == "GET" and method == "HEAD"):
            return _json(405, {"error": "method not allowed"}, [("Allow", wanted)])
        try:
            if wanted == "GET":
                params = parameters(request.query, _ALLOWED[name])
                handler = getattr(self.api, name)
                return _json(200, await handler(params))
            if request.query:
                raise BadRequest("no parameters here: the body says what to do")
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type.lower() != "application/json":
                raise BadRequest("the body must be application/json", 415)
            if name == "disconnect":
                return _json(200, await self.api.disconnect(request.body))
            return _json(200, self.api.publish(request.body))
        except BadRequest as refused:
            return _json(refused.status, {"error": str(refused)})

    async def _verdict(self, request: HttpRequest) -> Verdict:
        try:
            return await self.auth.verdict(request)
        except Exception:  # the application's check failed: nobody gets in
            log.exception("admin: the authorize function failed")
            return Verdict.REFUSED

    def _page_response(self, base: str) -> HttpResponse:
        body = self._page.replace(b"__BASE__", base.encode())
        headers = [
            ("Content-Type", "text/html;charset=utf-8"),
            ("Content-Security-Policy", _POLICY),
            *_COMMON,
        ]
        return HttpResponse(200, headers, body)

    # ---------------------------------------------------------------------------- hosts

    def routes(self, path: str = "/admin") -> list[tornado.routing.Rule]:
        """Tornado rules serving the page at `path` and below it, beside the endpoint's.

        Examples:
            >>> import tornado.web
            >>> endpoint = Endpoint()
            >>> (rule,) = endpoint.admin("a-long-random-admin-token").routes("/admin/")
            >>> rule.matcher.regex.pattern  # the path itself and all below it
            '/admin(?:/.*)?$'
            >>> app = tornado.web.Application(endpoint.routes("/cometd") + [rule])

        Added in version 0.3.0."""
        from .hosts import tornado_rules

        return tornado_rules(self, check_path(path))

    def asgi(self, path: str = "/admin") -> AdminAsgi:
        """The page as an ASGI application answering `path` and below it; in Starlette or
        FastAPI, add its `routes()` (`app.router.routes.extend(admin.asgi(path).routes())`).

        Examples:
            >>> app = Endpoint().admin("a-long-random-admin-token").asgi("/admin/")
            >>> app.base
            '/admin'
            >>> [(type(route).__name__, route.path) for route in app.routes()]  # for Starlette
            [('Route', '/admin'), ('Mount', '/admin')]

        Added in version 0.3.0."""
        from .hosts import AdminAsgi

        return AdminAsgi(self, check_path(path))

    def aiohttp_mount(self, app: aiohttp.web.Application, path: str = "/admin") -> None:
        """Serves the page at `path` and below it in an aiohttp application.

        Examples:
            >>> from aiohttp import web
            >>> app = web.Application()
            >>> Endpoint().admin("a-long-random-admin-token").aiohttp_mount(app, "/admin")
            >>> [resource.canonical for resource in app.router.resources()]
            ['/admin', '/admin/{rest}']

        Added in version 0.3.0."""
        from .hosts import aiohttp_routes

        aiohttp_routes(self, app, check_path(path))


def _read(name: str) -> bytes:
    return resources.files("bayeux.admin").joinpath("static", name).read_bytes()


def _json(status: int, value: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(
        status,
        [("Content-Type", "application/json"), *_COMMON, *(headers or [])],
        orjson.dumps(value),
    )


def _refused(verdict: Verdict) -> HttpResponse:
    if verdict is Verdict.REFUSED:
        return _json(403, {"error": "not allowed"})
    challenge = 'Bearer realm="bayeux-admin"'
    if verdict is Verdict.WRONG:
        challenge += ', error="invalid_token"'
    return _json(401, {"error": "token needed"}, [("WWW-Authenticate", challenge)])
