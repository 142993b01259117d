"""The admin page under test: a standalone server serving it from a thread, its API asked with
or without the token, and a swarm of WebSocket clients making a known load."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from bayeux import Endpoint
from bayeux.connection.listener import Listener

from .http import Response, request

TOKEN = "admin-token-for-tests-0123456789"
# Every swarm client comes from 127.0.0.1 without a browser cookie: the per-address handshake
# bound and the per-browser long-poll bound would rightly refuse a thousand of them.
LOAD_OPTIONS = ("--max-handshakes-per-address", "-1", "--max-sessions-per-browser", "-1")


def api(
    base: str,
    name: str,
    query: str = "",
    *,
    token: str | None = TOKEN,
    body: Any = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> Response:
    """A request of the admin API at `base` (http://host:port/admin)."""
    sent = dict(headers or {})
    if token is not None:
        sent.setdefault("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        sent.setdefault("Content-Type", "application/json")
    url = f"{base}/api/{name}" + (f"?{query}" if query else "")
    return request(
        url, method=method or ("GET" if body is None else "POST"), body=data, headers=sent
    )


def until(condition: Any, within: float = 10.0, every: float = 0.1) -> Any:
    """Polls `condition()` until it returns something true; that value. Fails after `within`."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "never happened"
        time.sleep(every)


class AdminServer:
    """`endpoint` served by the standalone listener on 127.0.0.1 from a thread, with its admin
    page at `admin_path` (the endpoint's `admin()` made first); or, given `tornado_settings`,
    by a Tornado Application with those settings, its rules the endpoint's and the page's."""

    def __init__(
        self,
        endpoint: Endpoint,
        admin_path: str = "/admin",
        path: str = "/cometd",
        tornado_settings: dict[str, Any] | None = None,
    ):
        self.endpoint = endpoint
        self.admin_path = admin_path
        self.path = path
        self.tornado_settings = tornado_settings
        self.port = 0
        self.listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.admin_path}"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        http: Listener | tornado.httpserver.HTTPServer
        if self.tornado_settings is None:
            http = self.listener = self.endpoint.listener(self.path, admin_path=self.admin_path)
        else:
            rules = self.endpoint.routes(self.path) + self.endpoint.admin().routes(self.admin_path)
            app = tornado.web.Application(rules, **self.tornado_settings)
            http = tornado.httpserver.HTTPServer(app)
        http.add_sockets(sockets)
        self.endpoint.start()
        self._ready.set()
        await self._stop.wait()
        http.stop()
        await self.endpoint.shutdown(timeout=2.0)

    def call(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` on the server's loop; its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(_called(fn, *args), self._loop).result(10)

    def __enter__(self) -> AdminServer:
        self._thread.start()
        assert self._ready.wait(10), "the server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


async def _called(fn: Any, *args: Any) -> Any:
    return fn(*args)


class _Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: tornado.websocket.WebSocketClientConnection | None = None
        self.client_id = ""
        self.next_id = 0
        self.stopped = False  # told to stop (reconnect: none), or its socket closed

    async def send(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            self.next_id += 1
            message["id"] = str(self.next_id)
            if self.client_id:
                message["clientId"] = self.client_id
        assert self.ws is not None
        await self.ws.write_message(json.dumps(list(messages)))

    async def read(self) -> list[dict[str, Any]]:
        assert self.ws is not None
        frame = await self.ws.read_message()
        if frame is None:
            raise ConnectionError("closed")
        return json.loads(frame)

    async def join(self, channels: list[str]) -> None:
        self.ws = await tornado.websocket.websocket_connect(self.url.replace("http", "ws", 1))
        await self.send(
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["websocket"],
            }
        )
        (reply,) = [m for m in await self.read() if m["channel"] == "/meta/handshake"]
        assert reply["successful"], reply
        self.client_id = reply["clientId"]
        await self.send(
            {"channel": "/meta/connect", "connectionType": "websocket", "advice": {"timeout": 0}},
            *({"channel": "/meta/subscribe", "subscription": c} for c in channels),
        )
        pending = {"/meta/connect", *(["/meta/subscribe"] if channels else [])}
        while pending:
            for message in await self.read():
                assert message.get("successful", True), message
                pending.discard(message["channel"])
        await self.send({"channel": "/meta/connect", "connectionType": "websocket"})


class Swarm:
    """`clients` Bayeux clients over WebSocket from a thread of their own, each connected and
    connecting again as its connects are answered; the first `subscribed` of them subscribe to
    `channel`, client 0 to `extra` channels too; with `rate`, one more client publishes to
    `channel` that many times a second. Counts what each channel delivered, and knows which
    clients were told to stop."""

    def __init__(
        self,
        url: str,
        clients: int,
        *,
        subscribed: int = 0,
        channel: str = "/load/ticks",
        rate: float = 0.0,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.url = url
        self.channel = channel
        self.rate = rate
        self.clients = [_Client(url) for _ in range(clients)]
        self.subscribed = subscribed
        self.extra = extra
        self.received: Counter[str] = Counter()
        self.published = 0
        self.publisher: _Client | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    @property
    def client_ids(self) -> list[str]:
        return [c.client_id for c in self.clients]

    def stopped(self, client_id: str) -> bool:
        return any(c.stopped for c in self.clients if c.client_id == client_id)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            for start in range(0, len(self.clients), 50):
                batch = self.clients[start : start + 50]
                await asyncio.gather(
                    *(c.join(self._channels_of(start + i)) for i, c in enumerate(batch))
                )
            tasks = [asyncio.ensure_future(self._listen(c)) for c in self.clients]
            if self.rate:
                publisher = self.publisher = _Client(self.url)
                await publisher.join([])
                tasks.append(asyncio.ensure_future(self._publish(publisher)))
                tasks.append(asyncio.ensure_future(self._listen(publisher)))
        except BaseException as exc:  # told to the test through `start`
            self.failure = exc
        finally:
            self.ready.set()
        await self._done.wait()
        for task in tasks:
            task.cancel()
        for client in [*self.clients, *([self.publisher] if self.publisher else [])]:
            if client.ws is not None:
                client.ws.close()

    def _channels_of(self, index: int) -> list[str]:
        channels = [self.channel] if index < self.subscribed else []
        return channels + list(self.extra) if index == 0 else channels

    async def _listen(self, client: _Client) -> None:
        try:
            while True:
                for message in await client.read():
                    channel = message.get("channel", "")
                    if channel == "/meta/connect":
                        if (message.get("advice") or {}).get("reconnect") == "none":
                            client.stopped = True
                            return
                        await client.send(
                            {"channel": "/meta/connect", "connectionType": "websocket"}
                        )
                    elif "data" in message:
                        self.received[channel] += 1
        except (ConnectionError, tornado.websocket.WebSocketClosedError):
            client.stopped = True

    async def _publish(self, publisher: _Client) -> None:
        started = time.monotonic()
        while True:
            await publisher.send({"channel": self.channel, "data": {"n": self.published}})
            self.published += 1
            delay = started + self.published / self.rate - time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    def start(self, within: float = 120) -> Swarm:
        self._thread.start()
        assert self.ready.wait(within), "the swarm did not join in time"
        if self.failure is not None:
            raise self.failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(10)

    def __enter__(self) -> Swarm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
