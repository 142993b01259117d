"""The Bayeux endpoint as a Tornado application sees it: routes to mount, a sweeper for expired
sessions, server-side publishing, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import tornado.ioloop
import tornado.routing

from .adapters.asgi import AsgiApp
from .adapters.routes import answer_rule, transport_rules
from .connection.listener import ExtraRoutes, Listener
from .core.engine import Engine
from .core.server import BayeuxServer, RemovalListener, SessionListener, SubscriptionListener
from .core.settings import Settings
from .core.tasks import TaskSet
from .core.threads import LoopOwner, on_loop, on_loop_async
from .health import health_answer
from .transports.context import Drainable
from .transports.http import HttpResponse

if TYPE_CHECKING:
    import aiohttp.web

    from .admin import Admin, AdminAuthorizer

log = logging.getLogger("bayeux.endpoint")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Endpoint:
    """A Bayeux server (`server`, the sans-I/O `BayeuxServer`) and every way to serve it:
    Tornado routes (`routes`), the standalone listener (`listener`), an ASGI application
    (`asgi`) and aiohttp (`aiohttp_mount`, `aiohttp_app`); it also sweeps expired sessions,
    publishes from the server side, answers health and metrics, and drains (`shutdown`).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> endpoint = Endpoint(Settings(timeout=20000))
        >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
        ...     news = client.messages("/news", timeout=5)
        ...     reached = endpoint.publish("/news", {"headline": "..."})  # from any thread
        ...     next(news)["data"]
        {'headline': '...'}

    Added in version 0.1.0.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        server: BayeuxServer | None = None,
        allowed_origins: tuple[str, ...] = ("*",),
        engine: Engine | None = None,
    ) -> None:
        self.server = server or BayeuxServer(settings)
        self.allowed_origins = tuple(allowed_origins)
        # What the processes of a deployment share, e.g. bayeux.engines.redis.RedisEngine
        # (core/engine.py): attached now, so that no request is ever served as if this
        # process were alone; started with us, stopped by shutdown().
        self.engine = engine
        if engine is not None:
            engine.attach(self.server)
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None
        self._tasks = TaskSet("starting the engine", log)
        self._held_by_browser: dict[str, int] = {}
        # Open TCP connections (HTTP and WebSocket), bounded by max_connections where the
        # standalone server accepts them (bayeux/connection/listener.py).
        self.connections = 0
        # What a drain must see finished: open WebSockets, EventSource streams, held long-polls.
        self._streams: set[Drainable] = set()
        # The admin page, once asked for (`admin`).
        self._admin: Admin | None = None

    @property
    def loop_owner(self) -> LoopOwner:
        """The loop the endpoint serves on; its methods may be called from any thread (see
        docs/embedding.md, "Threads").

        Examples:
            >>> import asyncio
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     running.endpoint.loop_owner.loop is running.call(asyncio.get_running_loop)
            True

        Added in version 0.3.0."""
        return self.server.loop_owner

    @property
    def settings(self) -> Settings:
        """The server's settings (`Endpoint(settings)`).

        Examples:
            >>> Endpoint(Settings(timeout=20000)).settings.timeout
            20000
        """
        return self.server.settings

    def routes(self, path: str = "/cometd") -> list[tornado.routing.Rule]:
        """Tornado rules serving every transport at `path` and any sub-path below it.

        Examples:
            >>> import asyncio
            >>> import tornado.web
            >>> from bayeux.client import Client
            >>> from bayeux.testing import free_port
            >>> async def main(port):
            ...     endpoint = Endpoint()
            ...     app = tornado.web.Application(endpoint.routes("/cometd"))  # and your own
            ...     http = app.listen(port, "127.0.0.1")
            ...     async with Client(f"http://127.0.0.1:{port}/cometd") as client:
            ...         print(client.state)
            ...     http.stop()
            ...     await endpoint.shutdown()
            >>> asyncio.run(main(free_port()))
            connected
        """
        return transport_rules(self, path)

    def listener(
        self,
        path: str = "/cometd",
        *,
        health_path: str | None = None,
        metrics_path: str | None = None,
        xheaders: bool = False,
        ssl_options: ssl.SSLContext | None = None,
        extra: ExtraRoutes | None = None,
        admin_path: str | None = None,
    ) -> Listener:
        """The standalone server: a TCP listener serving the endpoint at `path` with its own
        HTTP/1.1 and WebSocket connection layer (faster than Tornado's HTTPServer and
        RequestHandler; docs/performance.md). `listen()` or `add_sockets()` it, and `stop()` it
        before `shutdown()`. `xheaders` trusts a reverse proxy's X-Real-IP / X-Forwarded-For for the
        client's address; `ssl_options` serves https:// and wss://; `extra` maps other paths
        to functions answering them; `admin_path` serves the admin page there (`admin()`).

        Examples:
            >>> import asyncio
            >>> from bayeux.client import Client
            >>> from bayeux.testing import free_port
            >>> async def main(port):
            ...     endpoint = Endpoint()
            ...     listener = endpoint.listener("/cometd", health_path="/health")
            ...     listener.listen(port, "127.0.0.1")
            ...     async with Client(f"http://127.0.0.1:{port}/cometd") as client:
            ...         print(client.state)
            ...     listener.stop()
            ...     await endpoint.shutdown()
            >>> asyncio.run(main(free_port()))
            connected

        Added in version 0.3.0."""
        extra = dict(extra or {})
        if health_path:
            extra[health_path] = lambda request: self.health_answer()
        if metrics_path:
            answer = self.metrics_answer()
            extra[metrics_path] = lambda request: answer()
        # The admin page, below `admin_path` (`admin()` first gives it its token).
        sites = {admin_path: self.admin().at(admin_path)} if admin_path else None
        return Listener(
            self, path, extra=extra, xheaders=xheaders, ssl_options=ssl_options, sites=sites
        )

    def asgi(self, drain_timeout: float = 5.0) -> AsgiApp:
        """The endpoint as an ASGI 3 application (adapters/asgi.py): run it under uvicorn or
        hypercorn, or mount it in Starlette, FastAPI or Django. Its lifespan events start it
        and drain it (within `drain_timeout` seconds); without them it starts on first use.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import AsgiThread
            >>> endpoint = Endpoint()
            >>> app = endpoint.asgi()  # uvicorn module:app, or mounted in Starlette, Django...
            >>> with AsgiThread(endpoint=endpoint, app=app) as running:
            ...     with SyncClient(running.url) as client:
            ...         print(client.state)
            connected

        Added in version 0.3.0."""
        app = AsgiApp(self, drain_timeout)
        app.on_shutdown = self.shutdown
        return app

    def aiohttp_mount(
        self, app: aiohttp.web.Application, path: str = "/cometd", drain_timeout: float = 5.0
    ) -> None:
        """Serves the endpoint at `path` and below it in an aiohttp application
        (adapters/aiohttp.py; pip install aiohttp). The application's startup starts it and
        its shutdown drains it (within `drain_timeout` seconds).

        Examples:
            >>> from aiohttp import web
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import AiohttpThread
            >>> endpoint = Endpoint()
            >>> app = web.Application()  # with your own routes
            >>> endpoint.aiohttp_mount(app, "/cometd")
            >>> with AiohttpThread(endpoint=endpoint, app=app) as running:
            ...     with SyncClient(running.url) as client:
            ...         print(client.state)
            connected

        Added in version 0.3.0."""
        from .adapters.aiohttp import mount

        mount(app, path, self, lambda: self.shutdown(drain_timeout))

    def aiohttp_app(self, drain_timeout: float = 5.0) -> aiohttp.web.Application:
        """The endpoint as an aiohttp sub-application for `app.add_subapp(prefix, ...)`: it
        serves `prefix/...`, not `prefix` itself (use `aiohttp_mount` for that).

        Examples:
            >>> from aiohttp import web
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import AiohttpThread
            >>> endpoint = Endpoint()
            >>> app = web.Application()
            >>> resource = app.add_subapp("/bayeux", endpoint.aiohttp_app())
            >>> with AiohttpThread(endpoint=endpoint, app=app) as running:
            ...     with SyncClient(running.origin + "/bayeux/cometd") as client:
            ...         print(client.state)
            connected

        Added in version 0.3.0."""
        from .adapters.aiohttp import aiohttp_app

        return aiohttp_app(self, lambda: self.shutdown(drain_timeout))

    def start(self) -> None:
        """Starts sweeping expired sessions on the running IOLoop; called by the hosts on the
        first request (on the loop, as every request: the loop it runs on becomes the
        server's), so embedding needs no extra step.

        Examples:
            >>> import asyncio
            >>> async def main():
            ...     endpoint = Endpoint()
            ...     endpoint.start()  # sweeps on this loop from now on
            ...     print(endpoint.loop_owner.loop is asyncio.get_running_loop())
            ...     await endpoint.shutdown()
            >>> asyncio.run(main())
            True
        """
        if self._sweeper is None:
            self.loop_owner.bind_running()
            self._sweeper = tornado.ioloop.PeriodicCallback(self._sweep, self.settings.sweep_period)
            self._sweeper.start()
            if self.engine is not None:
                self._tasks.spawn(self.engine.start(self.server))
            # What decorators registered: subscriptions, service objects' start hooks.
            self._tasks.spawn(self.server.start_services())
            if self._admin is not None:
                self._admin.start()

    def _sweep(self) -> None:
        try:
            self.server.sweep()
        except Exception:  # the sweeper must keep running whatever happens
            log.exception("sweep failed")

    @on_loop
    def publish(self, channel: str, data: Any, *, ext: dict[str, Any] | None = None) -> int:
        """Publishes `data` to the subscribers of `channel` from the server side
        (`BayeuxServer.publish`), from any thread: a call from another thread than the
        server's loop runs on the loop, and returns once it has.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running, SyncClient(running.url) as client:
            ...     news = client.messages("/news", timeout=5)
            ...     running.endpoint.publish("/news", {"headline": "hello"})  # sessions reached
            ...     next(news)["data"]
            1
            {'headline': 'hello'}
        """
        return self.server.publish(channel, data, ext=ext)

    # The decorators of the server (BayeuxServer.service...), on the endpoint for convenience.

    @on_loop
    def service(self, channel: str) -> Callable[[F], F]:
        """`BayeuxServer.service`: a decorator for the service of `channel` (a service
        channel, pattern or template), called as `function(session, message, **names)`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.service("/service/engines/{engine_id}")
            ... def engine(session, message, engine_id):
            ...     return {"engine": engine_id, "asked": message["data"]}
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
            ...     client.remote_call("/service/engines/e42", "status")
            {'engine': 'e42', 'asked': 'status'}

        Added in version 0.3.0."""
        return self.server.service(channel)

    @on_loop
    def remote_call(self, channel: str) -> Callable[[F], F]:
        """`BayeuxServer.remote_call`: a decorator for the target of CometD's `remoteCall`,
        called as `function(session, data, **names)`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.remote_call("/service/price/{symbol}")
            ... async def price(session, data, symbol):
            ...     return {"symbol": symbol, "price": 42.0}
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
            ...     client.remote_call("/service/price/ACME", None)
            {'symbol': 'ACME', 'price': 42.0}

        Added in version 0.3.0."""
        return self.server.remote_call(channel)

    @on_loop
    def message_listener(self, channel: str) -> Callable[[F], F]:
        """`BayeuxServer.listener` (on the endpoint, `listener` is the standalone server): a
        decorator for a message listener of `channel`, called as
        `function(session, channel, message, **names)`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.message_listener("/chat/{room}")
            ... def stamp(session, channel, message, room):
            ...     message["data"] = {"room": room, "text": message["data"]}
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
            ...     lobby = client.messages("/chat/lobby", timeout=5)
            ...     reply = client.publish("/chat/lobby", "hello")
            ...     next(lobby)["data"]
            {'room': 'lobby', 'text': 'hello'}

        Added in version 0.3.0."""
        return self.server.listener(channel)

    @on_loop
    def subscription(self, channel: str) -> Callable[[F], F]:
        """`BayeuxServer.subscription`: a decorator for a server-side subscriber of `channel`,
        called as `function(message, **names)`; the endpoint starts it when it starts.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.subscription("/stock/{symbol}")
            ... def ticked(message, symbol):
            ...     print(symbol, message["data"])
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
            ...     reply = client.publish("/stock/ACME", 42.5)
            ACME 42.5

        Added in version 0.3.0."""
        return self.server.subscription(channel)

    @on_loop
    def add_services(self, obj: T) -> T:
        """`BayeuxServer.add_services`: registers `obj`'s marked methods; its start and stop
        hooks run when this endpoint starts and shuts down.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> class Clock:
            ...     @bayeux.remote_call("/service/time")
            ...     def time(self, session, data):
            ...         return "12:00"
            ...
            ...     @bayeux.on_stop
            ...     def stop(self):
            ...         print("clock stopped")
            >>> endpoint = Endpoint()
            >>> clock = endpoint.add_services(Clock())
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
            ...     client.remote_call("/service/time", None)
            '12:00'
            clock stopped

        Added in version 0.3.0."""
        return self.server.add_services(obj)

    @on_loop
    def on_session_added(self, listener: SessionListener) -> SessionListener:
        """`BayeuxServer.on_session_added`: calls `listener(session)` once `session` is
        created; returns `listener` (a decorator: `@endpoint.on_session_added`).

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.on_session_added
            ... def added(session):
            ...     print("session added")
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url):
            ...     pass
            session added

        Added in version 0.3.0."""
        return self.server.on_session_added(listener)

    @on_loop
    def on_session_removed(self, listener: RemovalListener) -> RemovalListener:
        """`BayeuxServer.on_session_removed`: calls `listener(session, ended)` once `session`
        has ended; returns `listener`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.on_session_removed
            ... def removed(session, ended):
            ...     print("session removed:", ended.value)
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url):
            ...     pass
            session removed: disconnected

        Added in version 0.3.0."""
        return self.server.on_session_removed(listener)

    @on_loop
    def on_subscribed(self, listener: SubscriptionListener) -> SubscriptionListener:
        """`BayeuxServer.on_subscribed`: calls `listener(session, channel)` once `session` has
        subscribed to `channel`; returns `listener`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.on_subscribed
            ... def subscribed(session, channel):
            ...     print("subscribed to", channel)
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
            ...     subscription = client.subscribe("/chat/*", print)
            subscribed to /chat/*

        Added in version 0.3.0."""
        return self.server.on_subscribed(listener)

    @on_loop
    def on_unsubscribed(self, listener: SubscriptionListener) -> SubscriptionListener:
        """`BayeuxServer.on_unsubscribed`: calls `listener(session, channel)` once `session`
        has unsubscribed from `channel`; returns `listener`.

        Examples:
            >>> from bayeux.client import SyncClient
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> @endpoint.on_unsubscribed
            ... def unsubscribed(session, channel):
            ...     print("unsubscribed from", channel)
            >>> with ServerThread(endpoint=endpoint) as running, SyncClient(running.url) as client:
            ...     client.unsubscribe(client.subscribe("/chat/*", print))
            unsubscribed from /chat/*

        Added in version 0.3.0."""
        return self.server.on_unsubscribed(listener)

    def browser_may_hold(self, browser: str | None) -> bool:
        """Whether a browser may hold one more long-poll (CometD's maxSessionsPerBrowser).

        Examples:
            >>> endpoint = Endpoint(Settings(max_sessions_per_browser=1))
            >>> endpoint.browser_may_hold("b-1")
            True
            >>> endpoint.browser_holding("b-1", +1)  # what the transports do
            >>> endpoint.browser_may_hold("b-1"), endpoint.browser_may_hold("b-2")
            (False, True)
        """
        limit = self.settings.max_sessions_per_browser
        if browser is None or limit < 0:
            return True
        return self._held_by_browser.get(browser, 0) < limit

    def browser_holding(self, browser: str | None, change: int) -> None:
        """Counts a held long-poll of `browser` (`change` +1 or -1) against
        `--max-sessions-per-browser`; called by the transports.

        Examples:
            >>> endpoint = Endpoint(Settings(max_sessions_per_browser=1))
            >>> endpoint.browser_holding("b-1", +1)  # a long-poll of browser b-1 held
            >>> endpoint.browser_may_hold("b-1")
            False
            >>> endpoint.browser_holding("b-1", -1)  # and answered
            >>> endpoint.browser_may_hold("b-1")
            True
        """
        if browser is None or self.settings.max_sessions_per_browser < 0:
            return
        count = self._held_by_browser.get(browser, 0) + change
        if count > 0:
            self._held_by_browser[browser] = count
        else:
            self._held_by_browser.pop(browser, None)

    def origin_allowed(self, origin: str, host: str | None = None) -> bool:
        """Whether pages of `origin` may use the endpoint: any when `*` is allowed, else those
        listed, and always the endpoint's own (`host` is the request's Host header).

        Examples:
            >>> endpoint = Endpoint(allowed_origins=("https://app.example",))
            >>> endpoint.origin_allowed("https://app.example")
            True
            >>> endpoint.origin_allowed("https://elsewhere.example")
            False
            >>> endpoint.origin_allowed("http://cometd.example", host="cometd.example")  # its own
            True
        """
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        return host is not None and urlsplit(origin).netloc == host

    def health(self) -> tuple[str, bool]:
        """(status, ready): "serving", "draining" (shutting down), or "engine-unavailable"
        (the engine cannot reach Redis).

        Examples:
            >>> endpoint = Endpoint()
            >>> endpoint.health()
            ('serving', True)

        Added in version 0.2.0."""
        if self.server.shutting_down:
            return "draining", False
        engine = self.engine
        if engine is not None and not (engine.ready.is_set() and engine.available):
            return "engine-unavailable", False
        return "serving", True

    def health_answer(self) -> HttpResponse:
        """The answer to a health check: 200 when ready, 503 otherwise.

        Examples:
            >>> answer = Endpoint().health_answer()
            >>> answer.status, answer.body
            (200, b'{"status":"serving","sessions":0}')

        Added in version 0.3.0."""
        status, ready = self.health()
        return health_answer(status, ready, len(self.server.sessions))

    def health_route(self, path: str = "/health") -> tornado.routing.Rule:
        """A route answering `health()` at `path`: 200 when ready, 503 otherwise.

        Examples:
            >>> from urllib.request import urlopen
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> routes = [endpoint.health_route("/health")]  # next to endpoint.routes()
            >>> with ServerThread(endpoint=endpoint, extra_routes=routes) as running:
            ...     with urlopen(running.origin + "/health") as answer:
            ...         answer.status, answer.read()
            (200, b'{"status":"serving","sessions":0}')

        Added in version 0.2.0."""
        return answer_rule(path, self.health_answer)

    def metrics_answer(self) -> Callable[[], HttpResponse]:
        """A function answering a scrape of this endpoint's Prometheus metrics (needs the
        prometheus-client package: pip install 'bayeux-server[metrics]').

        Examples:
            >>> answer = Endpoint().metrics_answer()
            >>> scrape = answer()  # one per scrape
            >>> scrape.status, b"bayeux_connections 0.0" in scrape.body
            (200, True)

        Added in version 0.3.0."""
        from .metrics import metrics_answer, registry_for

        registry = registry_for(self)
        return lambda: metrics_answer(registry)

    @on_loop
    def admin(self, token: str | None = None, *, authorize: AdminAuthorizer | None = None) -> Admin:
        """The endpoint's admin page (bayeux.admin.Admin; docs/admin.md): made by the first
        call, behind `token` and/or the application's `authorize(request)` (a function of
        the request context returning True to let it in; it may be a coroutine function);
        later calls return it as it is. Serve it with `listener(admin_path=...)`, or mount
        it: `admin.routes(path)` (Tornado), `admin.asgi(path)`, `admin.aiohttp_mount(app,
        path)`.

        Raises:
            ValueError: the first call gives neither a token nor `authorize`, or a token
                that is not 16 to 256 printable ASCII characters without spaces.

        Examples:
            >>> import json
            >>> from urllib.request import Request, urlopen
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> admin = endpoint.admin("a-long-random-admin-token")
            >>> endpoint.admin() is admin
            True
            >>> routes = admin.routes("/admin")  # the page beside the endpoint, in Tornado
            >>> with ServerThread(endpoint=endpoint, extra_routes=routes) as running:
            ...     asked = Request(running.origin + "/admin/api/overview",
            ...                     headers={"Authorization": "Bearer a-long-random-admin-token"})
            ...     json.load(urlopen(asked))["sessions"]
            0

        Added in version 0.3.0."""
        if self._admin is None:
            from .admin import Admin

            self._admin = Admin(self, token=token, authorize=authorize)
            if self._sweeper is not None:  # already serving
                self._admin.start()
        return self._admin

    def metrics_route(self, path: str = "/metrics") -> tornado.routing.Rule:
        """A route serving this endpoint's Prometheus metrics at `path`.

        Examples:
            >>> from urllib.request import urlopen
            >>> from bayeux.testing import ServerThread
            >>> endpoint = Endpoint()
            >>> routes = [endpoint.metrics_route("/metrics")]  # next to endpoint.routes()
            >>> with ServerThread(endpoint=endpoint, extra_routes=routes) as running:
            ...     with urlopen(running.origin + "/metrics") as answer:
            ...         b"# TYPE bayeux_connections gauge" in answer.read()
            True

        Added in version 0.2.0."""
        return answer_rule(path, self.metrics_answer())

    def connection_opened(self) -> None:
        """Counts a connection the hosts opened (the health and metrics figures); called by the
        transports.

        Examples:
            >>> endpoint = Endpoint()
            >>> endpoint.connection_opened()  # what a host does as it accepts one
            >>> endpoint.connections
            1

        Added in version 0.2.0."""
        self.connections += 1

    def connection_closed(self) -> None:
        """Counts a connection closed; called by the transports.

        Examples:
            >>> endpoint = Endpoint()
            >>> endpoint.connection_opened()
            >>> endpoint.connection_closed()
            >>> endpoint.connections
            0

        Added in version 0.2.0."""
        self.connections -= 1

    def stream_opened(self, stream: Drainable) -> None:
        """A connection a drain must finish: it has a `finish_draining()` method.

        Examples:
            >>> import asyncio
            >>> endpoint = Endpoint()
            >>> class Stream:  # a connection of a host of your own
            ...     def finish_draining(self):
            ...         print("told to finish")
            ...         endpoint.stream_closed(self)
            >>> endpoint.stream_opened(Stream())
            >>> asyncio.run(endpoint.shutdown(timeout=1.0))
            told to finish

        Added in version 0.2.0."""
        self._streams.add(stream)

    def stream_closed(self, stream: Drainable) -> None:
        """Forgets a connection `stream_opened` registered: it has finished.

        Examples:
            >>> import asyncio
            >>> endpoint = Endpoint()
            >>> class Stream:
            ...     def finish_draining(self):
            ...         print("told to finish")
            >>> stream = Stream()
            >>> endpoint.stream_opened(stream)
            >>> endpoint.stream_closed(stream)  # it closed on its own
            >>> asyncio.run(endpoint.shutdown(timeout=1.0))  # nothing left to finish

        Added in version 0.2.0."""
        self._streams.discard(stream)

    @on_loop_async
    async def shutdown(self, timeout: float = 5.0) -> None:
        """Drains, within `timeout` seconds: refuses new handshakes, answers every held connect
        with advice to come back, closes WebSockets with 1001 once their pending frames are
        written, ends EventSource streams; then the engine, if any, writes what waits for its
        log and leaves its sessions to the other processes (engines/redis/engine.py).
        Stop accepting connections (HTTPServer.stop) before calling it.

        Examples:
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     running.await_(running.endpoint.shutdown, 1.0)  # from any thread
            ...     running.endpoint.health()
            ('draining', False)
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.server.shutdown()
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        for stream in list(self._streams):
            try:
                stream.finish_draining()
            except Exception:  # one broken connection must not stop the drain
                log.exception("draining a connection failed")
                self._streams.discard(stream)
        while self._streams and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self._streams:
            log.warning(
                "drain timed out with %d connections still open",
                len(self._streams),
                extra={"event": "drain-timeout"},
            )
        await self.server.stop_services()
        if self._admin is not None:
            await self._admin.stop()
        if self.engine is not None:
            await self.engine.stop(max(1.0, deadline - loop.time()))
