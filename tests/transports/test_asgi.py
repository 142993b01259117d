"""Endpoint.asgi() driven with ASGI messages directly (no host): the bounds the standalone
server enforces hold here too, a held connect is freed when the host reports the client gone,
and lifespan events start and drain the endpoint. The whole conformance suite and the interop
clients run against it under uvicorn (spec_tests/conftest.py, interop/conftest.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from bayeux import Endpoint, Settings

from ..helpers.servers import handshake_message

Message = dict[str, Any]


def http_scope(method: str = "POST", path: str = "/cometd", **headers: str) -> Message:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "scheme": "http",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Peer:
    """The host's side: what the app receives, and what it sent."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        for message in incoming:
            self.incoming.put_nowait(message)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return await self.incoming.get()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(dict(message))

    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    def body(self) -> Any:
        raw = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return json.loads(raw)


async def post(app: Any, messages: list[dict[str, Any]]) -> Any:
    body = json.dumps(messages).encode()
    peer = Peer({"type": "http.request", "body": body, "more_body": False})
    scope = http_scope(content_type="application/json", content_length=str(len(body)))
    await app(scope, peer.receive, peer.send)
    return peer.body()


def test_a_body_over_the_limit_is_refused_as_it_arrives() -> None:
    async def scenario() -> None:
        app = Endpoint(Settings(max_message_size=1024)).asgi()
        # No Content-Length (chunked): counted as the chunks come, refused at the limit.
        chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 3
        peer = Peer(*chunks)
        await app(http_scope(content_type="application/json"), peer.receive, peer.send)
        assert peer.status() == 413
        assert peer.incoming.qsize() == 1  # the rest was never read
        declared = Peer()
        await app(http_scope(content_length="5000"), declared.receive, declared.send)
        assert declared.status() == 413  # refused before reading anything

    asyncio.run(scenario())


def test_a_held_connect_is_freed_when_the_host_reports_the_client_gone() -> None:
    async def scenario() -> None:
        endpoint = Endpoint(Settings(timeout=30000))
        app = endpoint.asgi()
        (reply,) = await post(app, [handshake_message("long-polling")])
        client_id = reply["clientId"]
        connect = {
            "channel": "/meta/connect",
            "clientId": client_id,
            "connectionType": "long-polling",
        }
        await post(app, [connect])  # the first connect is answered at once
        body = json.dumps([connect]).encode()
        peer = Peer({"type": "http.request", "body": body, "more_body": False})
        held = asyncio.ensure_future(app(http_scope(), peer.receive, peer.send))
        await asyncio.sleep(0.05)
        session = endpoint.server.sessions[client_id]
        assert session.held is not None and not held.done()
        peer.incoming.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(held, 2)  # not 30 s
        assert session.held is None and peer.sent == []  # nobody to answer
        await endpoint.shutdown(1)

    asyncio.run(scenario())


def test_lifespan_starts_and_drains_the_endpoint() -> None:
    async def scenario() -> None:
        endpoint = Endpoint(Settings())
        app = endpoint.asgi(drain_timeout=1)
        peer = Peer({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
        await asyncio.wait_for(app({"type": "lifespan"}, peer.receive, peer.send), 5)
        assert [m["type"] for m in peer.sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert endpoint.server.shutting_down

    asyncio.run(scenario())


def websocket_scope(**headers: str) -> Message:
    scope = http_scope(method="GET", **headers)
    scope.update(type="websocket", scheme="ws", subprotocols=[])
    return scope


def test_a_websocket_message_over_the_limit_closes_with_1009() -> None:
    async def scenario() -> None:
        app = Endpoint(Settings(max_message_size=1024)).asgi()
        peer = Peer(
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": "[" + " " * 2000 + "]"},
        )
        await asyncio.wait_for(app(websocket_scope(), peer.receive, peer.send), 5)
        await asyncio.sleep(0)
        assert peer.sent[0]["type"] == "websocket.accept"
        assert peer.sent[-1]["type"] == "websocket.close" and peer.sent[-1]["code"] == 1009

    asyncio.run(scenario())


def test_a_websocket_from_another_origin_is_refused_before_it_opens() -> None:
    async def scenario() -> None:
        endpoint = Endpoint(Settings(), allowed_origins=("https://app.example",))
        peer = Peer({"type": "websocket.connect"})
        scope = websocket_scope(origin="https://evil.example", host="127.0.0.1:8000")
        await endpoint.asgi()(scope, peer.receive, peer.send)
        assert peer.sent == [{"type": "websocket.close", "code": 1008}]
        assert endpoint.connections == 0

    asyncio.run(scenario())


def test_in_front_of_sends_its_path_to_the_endpoint_and_the_rest_to_the_app() -> None:
    async def scenario() -> None:
        endpoint = Endpoint(Settings())
        reached: list[str] = []

        async def application(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            reached.append(f"{scope['type']} {scope['path']}")
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        app = endpoint.asgi().in_front_of(application, "/cometd/")
        for path in ("/cometd", "/cometd/handshake"):
            body = json.dumps([handshake_message("long-polling")]).encode()
            peer = Peer({"type": "http.request", "body": body, "more_body": False})
            await app(http_scope(path=path), peer.receive, peer.send)
            assert peer.body()[0]["successful"] is True
        for path in ("/", "/cometdx", "/admin/cometd"):
            peer = Peer({"type": "http.request", "body": b"", "more_body": False})
            await app(http_scope(path=path), peer.receive, peer.send)
            assert peer.status() == 204
        assert reached == ["http /", "http /cometdx", "http /admin/cometd"]
        # Django serves no WebSocket: one for another path is refused, not passed on.
        peer = Peer({"type": "websocket.connect"})
        scope = websocket_scope()
        scope["path"] = "/chat"
        await app(scope, peer.receive, peer.send)
        assert peer.sent == [{"type": "websocket.close", "code": 1008}]
        # Lifespan starts and drains the endpoint; the app (Django has none) is not asked.
        peer = Peer({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
        await asyncio.wait_for(app({"type": "lifespan"}, peer.receive, peer.send), 5)
        assert peer.sent[-1] == {"type": "lifespan.shutdown.complete"}
        assert endpoint.server.shutting_down and len(reached) == 3

    asyncio.run(scenario())


def test_mounted_under_a_prefix_it_serves_sub_paths_and_event_streams() -> None:
    """Under a prefix (Starlette's Mount, uvicorn --root-path) the scope carries `root_path`
    and the whole path: message-type sub-paths and an event stream's clientId still work."""

    async def scenario() -> None:
        endpoint = Endpoint(Settings(timeout=30000))
        app = endpoint.asgi()
        body = json.dumps([handshake_message("long-polling", "eventsource")]).encode()
        peer = Peer({"type": "http.request", "body": body, "more_body": False})
        scope = http_scope(path="/app/cometd/handshake", content_type="application/json")
        scope["root_path"] = "/app"
        await app(scope, peer.receive, peer.send)
        (reply,) = peer.body()
        assert reply["successful"] is True
        client_id = reply["clientId"]
        stream = Peer()
        scope = http_scope(
            method="GET", path=f"/app/cometd/{client_id}", accept="text/event-stream"
        )
        scope["root_path"] = "/app"
        task = asyncio.ensure_future(app(scope, stream.receive, stream.send))
        await asyncio.sleep(0.05)
        assert stream.status() == 200  # the stream opened for that clientId
        started = next(m for m in stream.sent if m["type"] == "http.response.start")
        assert (b"content-type", b"text/event-stream") in [
            (k, v.split(b";")[0]) for k, v in started["headers"]
        ]
        stream.incoming.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(task, 2)
        await endpoint.shutdown(1)

    asyncio.run(scenario())
