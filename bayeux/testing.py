"""Running an endpoint on its own IOLoop thread, for tests, the conformance suite and benchmarks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self, TypeVar

import tornado.httpserver
import tornado.netutil
import tornado.tcpserver
import tornado.web

from .adapters.asgi import AsgiApp
from .connection.listener import Listener
from .core.settings import Settings
from .endpoint import Endpoint

T = TypeVar("T")


class ManualClock:
    """A clock for the sans-I/O core (`BayeuxServer(clock=...)`) that moves only when a test
    moves it: `clock.now += 5`.

    Examples:
        >>> import asyncio
        >>> from bayeux.testing import ManualClock
        >>> clock = ManualClock()
        >>> server = BayeuxServer(Settings(max_interval=5000), clock=clock)
        >>> handshake = {"channel": "/meta/handshake", "version": "1.0",
        ...              "supportedConnectionTypes": ["long-polling"]}
        >>> outcome = asyncio.run(server.handle([handshake]))
        >>> clock.now += 60  # a minute without a connect, in no time
        >>> [session.id for session in server.sweep()] == [outcome.replies[0]["clientId"]]
        True

    Added in version 0.2.0."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class LoopbackHost(ABC):
    """What the test hosts below share: a free port on 127.0.0.1 (known once started), the
    endpoint's URL at /cometd, and use as a context manager. Each host supplies `start` and
    `stop`."""

    port = 0

    @property
    def url(self) -> str:
        """The endpoint's URL, `http://127.0.0.1:PORT/cometd`.

        Examples:
            >>> from bayeux.testing import AsgiThread
            >>> with AsgiThread() as running:
            ...     running.url
            'http://127.0.0.1:.../cometd'
        """
        return f"http://127.0.0.1:{self.port}/cometd"

    @property
    def origin(self) -> str:
        """The server's origin, for Origin headers.

        Examples:
            >>> from bayeux.testing import AsgiThread
            >>> with AsgiThread() as running:
            ...     running.origin
            'http://127.0.0.1:...'
        """
        return f"http://127.0.0.1:{self.port}"

    @abstractmethod
    def start(self) -> Self:
        """Starts the host and waits until it serves; returns self."""

    @abstractmethod
    def stop(self) -> None:
        """Stops the host."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsgiThread(LoopbackHost):
    """An ASGI application served on 127.0.0.1 at a free port from a background thread, by
    uvicorn or hypercorn (tests; pip install 'bayeux-server[asgi]'): `Endpoint.asgi()` alone,
    with its lifespan events, unless `app` is given (an application mounting it).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import AsgiThread
        >>> with AsgiThread(Settings(timeout=2000), host="hypercorn") as running:
        ...     with SyncClient(running.url) as client:
        ...         client.publish("/chat/room", "hello")["successful"]
        True

    Added in version 0.3.0.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        endpoint: Endpoint | None = None,
        app: Any = None,
        host: str = "uvicorn",
    ) -> None:
        self.endpoint = endpoint or Endpoint(settings)
        self.app = app if app is not None else self.endpoint.asgi()
        self.host = host
        self.port = 0
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: Callable[[], object] = lambda: None

    def start(self) -> Self:
        """Starts the host on its thread and waits until it serves; returns self.

        Examples:
            >>> from bayeux.testing import AsgiThread
            >>> running = AsgiThread().start()  # or: with AsgiThread() as running
            >>> running.port > 0
            True
            >>> running.stop()
        """
        self.port = free_port()
        run = getattr(self, f"_{self.host}")  # _uvicorn, _hypercorn, _aiohttp
        self._thread = threading.Thread(target=run, name=self.host, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{self.host} did not start")
        return self

    def _uvicorn(self) -> None:
        import uvicorn

        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        server = uvicorn.Server(config)

        def stop() -> None:
            server.should_exit = True

        self._stop = stop

        async def serve() -> None:
            serving = asyncio.ensure_future(server.serve())
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            self._started.set()
            await serving

        asyncio.run(serve())

    def _hypercorn(self) -> None:
        import hypercorn.asyncio
        import hypercorn.config

        config = hypercorn.config.Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.loglevel = "WARNING"

        async def serve() -> None:
            stop = self._stop_event()
            app: Any = self.app  # hypercorn's own ASGI types; ours is a plain ASGI 3 app
            serving = asyncio.ensure_future(
                hypercorn.asyncio.serve(app, config, shutdown_trigger=stop.wait)
            )
            while not serving.done():
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                    break
                except OSError:
                    await asyncio.sleep(0.02)
            self._started.set()
            await serving

        asyncio.run(serve())

    def _stop_event(self) -> asyncio.Event:
        """An event the server's loop waits on; `stop()` sets it from any thread."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._stop = lambda: loop.call_soon_threadsafe(stop.set)
        return stop

    def stop(self) -> None:
        """Stops the host and joins its thread.

        Examples:
            >>> from bayeux.testing import AsgiThread
            >>> running = AsgiThread().start()
            >>> running.stop()
            >>> running.endpoint.health()  # drained by the application's shutdown
            ('draining', False)
        """
        self._stop()
        if self._thread is not None:
            self._thread.join(15)


class AiohttpThread(AsgiThread):
    """An aiohttp application served on 127.0.0.1 at a free port from a background thread:
    one with nothing but `Endpoint.aiohttp_app()` at /cometd unless `app` is given.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import AiohttpThread
        >>> with AiohttpThread() as running, SyncClient(running.url) as client:
        ...     client.publish("/chat/room", "hello")["successful"]
        True

    Added in version 0.3.0."""

    def __init__(
        self, settings: Settings | None = None, *, endpoint: Endpoint | None = None, app: Any = None
    ) -> None:
        from aiohttp import web

        endpoint = endpoint or Endpoint(settings)
        if app is None:
            app = web.Application()
            endpoint.aiohttp_mount(app, "/cometd")
        super().__init__(endpoint=endpoint, app=app, host="aiohttp")

    def _aiohttp(self) -> None:
        from aiohttp import web

        async def serve() -> None:
            stop = self._stop_event()
            application: Any = self.app  # an aiohttp Application here
            # aiohttp's own request-line limit (8,190 bytes), as applications run it: the
            # conformance suite keeps callback-polling URLs within 2,000 characters, as
            # CometD's clients do (spec_tests/wire.py MAX_URL_LENGTH).
            runner = web.AppRunner(application)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._started.set()
            await stop.wait()
            await runner.cleanup()

        asyncio.run(serve())


class GranianProcess(LoopbackHost):
    """`Endpoint.asgi()` served by granian (a Rust HTTP server with its own process) on
    127.0.0.1 at a free port: the ASGI adapter under a host that is not written in Python.
    The settings reach granian's worker through the environment (granian_app below).

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import GranianProcess
        >>> with GranianProcess(Settings(timeout=2000)) as running:
        ...     with SyncClient(running.url) as client:
        ...         client.publish("/chat/room", "hello")["successful"]
        True

    Added in version 0.3.0.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Starts granian and waits until it answers HTTP (its worker serves); returns self.

        Examples:
            >>> from bayeux.testing import GranianProcess
            >>> running = GranianProcess().start()
            >>> running.process.poll() is None  # running
            True
            >>> running.stop()
        """
        self.port = free_port()
        environment = dict(os.environ, BAYEUX_SETTINGS=json.dumps(asdict(self.settings)))
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory"),
                *("--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"),
                "bayeux.testing:granian_app",
            ],
            env=environment,
            # A group of its own: stop() reaches granian's workers too.
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, self.process)
            # granian listens before its worker has imported the application: a stop in
            # between leaves the worker running on its own.
            _wait_for_answer(self.url, self.process)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops granian and its workers (SIGTERM, then SIGKILL).

        Examples:
            >>> from bayeux.testing import GranianProcess
            >>> running = GranianProcess().start()
            >>> running.stop()
            >>> running.process.poll() is not None  # exited
            True
        """
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGTERM)
            stop_process(self.process)
            _signal_group(self.process.pid, signal.SIGKILL)  # a worker that outlived it


def granian_app() -> AsgiApp:
    """GranianProcess's application: `Endpoint.asgi()` with the settings in $BAYEUX_SETTINGS."""
    values: dict[str, Any] = json.loads(os.environ.get("BAYEUX_SETTINGS", "{}"))
    tuples = {name: tuple(v) for name, v in values.items() if isinstance(v, list)}
    return Endpoint(Settings(**(values | tuples))).asgi()


class ServerThread:
    """An Endpoint served on 127.0.0.1 at a free port from a background thread.

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import ServerThread
        >>> with ServerThread(Settings(timeout=2000)) as running:
        ...     with SyncClient(running.url) as client:
        ...         client.publish("/chat/room", "hello")["successful"]
        True

    Added in version 0.1.0.
    """

    # What `embedded` is when not given: tests run the same cases over both layers by setting
    # it (tests/conftest.py, fixture both_layers).
    embedded_by_default = False

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        path: str = "/cometd",
        endpoint: Endpoint | None = None,
        extra_routes: list[Any] | None = None,
        embedded: bool | None = None,
        ssl_options: ssl.SSLContext | None = None,
    ) -> None:
        """`embedded`: served by a Tornado Application (`Endpoint.routes()` plus
        `extra_routes`) on Tornado's HTTPServer, as an application embedding it would; else by
        the standalone listener, as `python -m bayeux` does."""
        if embedded is None:
            embedded = bool(extra_routes) or self.embedded_by_default
        if extra_routes and not embedded:
            raise ValueError("extra_routes need embedded=True")
        self.endpoint = endpoint or Endpoint(settings)
        self.embedded = embedded
        self.extra_routes = list(extra_routes or [])
        # Serves https:// and wss:// with this context (see connection.listener.tls_context).
        self.ssl_options = ssl_options
        self.path = path
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        # The standalone server's listener, once started (None when embedded).
        self.listener: Listener | None = None

    @property
    def url(self) -> str:
        """The endpoint's URL, `http://127.0.0.1:PORT/cometd` (https with `ssl_options`).

        Examples:
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread(path="/bayeux") as running:
            ...     running.url
            'http://127.0.0.1:.../bayeux'
        """
        scheme = "https" if self.ssl_options is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.path}"

    @property
    def origin(self) -> str:
        """The server's origin, for Origin headers.

        Examples:
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     running.origin
            'http://127.0.0.1:...'
        """
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        """Starts the server's thread and waits until it listens; returns self. Once: a
        server already started is returned as it is (`with` on a started one serves it from
        one loop, not two).

        Examples:
            >>> from bayeux.testing import ServerThread
            >>> running = ServerThread().start()
            >>> running.start() is running  # once
            True
            >>> running.stop()
        """
        if self._thread is not None and self._thread.is_alive():
            return self
        self._thread = threading.Thread(target=self._run, name="bayeux-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("server thread did not start")
        return self

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        http: tornado.tcpserver.TCPServer | Listener
        if self.embedded:
            app = tornado.web.Application(self.endpoint.routes(self.path) + self.extra_routes)
            http = tornado.httpserver.HTTPServer(app, ssl_options=self.ssl_options)
        else:
            http = self.listener = self.endpoint.listener(self.path, ssl_options=self.ssl_options)
        http.add_sockets(sockets)
        self.endpoint.start()
        self._ready.set()
        await self._stop.wait()
        http.stop()
        await self.endpoint.shutdown(timeout=2.0)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs `fn(*args)` on the server's loop thread and returns its result.

        Examples:
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     running.call(len, running.endpoint.server.sessions)
            0
        """
        assert self._loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(10)

    def await_(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Awaits `fn(*args)` on the server's loop thread and returns its result.

        Examples:
            >>> from bayeux.testing import ServerThread
            >>> with ServerThread() as running:
            ...     server = running.endpoint.server
            ...     running.await_(server.deliver_to_user, "alice", "/inbox", "hi")  # no session
            0

        Added in version 0.3.0."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result(10)

    def stop(self) -> None:
        """Drains the endpoint, stops the loop and joins the thread.

        Examples:
            >>> from bayeux.testing import ServerThread
            >>> running = ServerThread().start()
            >>> running.stop()
            >>> running.endpoint.health()
            ('draining', False)
        """
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Examples:
        >>> from bayeux.testing import free_port
        >>> 0 < free_port() < 65536
        True

    Added in version 0.1.0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Waits until `process` listens on 127.0.0.1:`port`; raises if it exits or never does.

    Examples:
        >>> import subprocess, sys
        >>> from bayeux.testing import free_port, stop_process, wait_for_port
        >>> port = free_port()
        >>> command = [sys.executable, "-m", "bayeux", "--port", str(port)]
        >>> process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        >>> wait_for_port(port, process)  # returns once it listens
        >>> stop_process(process)
        0

    Added in version 0.1.0."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}")


def _wait_for_answer(url: str, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Waits until `url` gets an HTTP answer (any status) from `process`'s server; raises if
    the process exits or it never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # an answer
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not answer at {url}")


def _signal_group(group: int, signal_number: int) -> None:
    """Sends `signal_number` to every process of process group `group`, if any is left."""
    try:
        os.killpg(group, signal_number)
    except ProcessLookupError:
        pass


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; its exit status.

    Examples:
        >>> from bayeux.testing import start_cli, stop_process
        >>> process, url = start_cli()
        >>> stop_process(process)  # drained and exited
        0
        >>> stop_process(process)  # already exited: its status again
        0

    Added in version 0.1.0."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


def start_cli(
    *options: str, log_level: str = "warning", **popen: Any
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m bayeux` with `options` on a free loopback port, once it listens: the process
    and its Bayeux URL (http://, whatever the options). `popen` goes to subprocess.Popen (cwd,
    env, stderr, ...). Stop it with stop_process().

    Examples:
        >>> from bayeux.client import SyncClient
        >>> from bayeux.testing import start_cli, stop_process
        >>> process, url = start_cli("--timeout", "20000")
        >>> with SyncClient(url) as client:
        ...     client.publish("/chat/room", "hello")["successful"]
        True
        >>> stop_process(process)
        0

    Added in version 0.1.0."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", log_level, *options],
        **popen,
    )
    try:
        wait_for_port(port, process)
    except RuntimeError:
        stop_process(process)
        raise
    return process, f"http://127.0.0.1:{port}/cometd"


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc: Linux), e.g. the workers of
    `python -m bayeux --workers N`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def client_frame(
    payload: bytes, opcode: int = 0x1, *, fin: bool = True, rsv1: bool = False
) -> bytes:
    """A WebSocket frame as a client sends it (masked), with the FIN and RSV1 bits given: for
    tests and benchmarks that send what a real client library would not (fragments, empty
    frames, compressed data of their own making)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    mask = os.urandom(4)
    masked = int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return header + mask + masked.to_bytes(n, "big")
