"""The HTTP request reaches every hook (core/context.py): built per request for the polling
transports, once at the upgrade for WebSocket and at the stream's start for EventSource, the
same on the standalone layer and embedded in Tornado."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket
import trustme

from bayeux import (
    Authorization,
    BayeuxServer,
    Endpoint,
    RequestContext,
    SecurityPolicy,
    ServerSession,
    Settings,
    current_request,
)
from bayeux.connection.listener import tls_context
from bayeux.core.context import RequestContext as CoreRequestContext
from bayeux.testing import ServerThread

from ..helpers.http import post_json, request
from ..helpers.servers import handshake_message, next_frame, ws_url

pytestmark = pytest.mark.usefixtures("both_layers")


class Recording(SecurityPolicy):
    """Records the request each hook saw."""

    def __init__(self) -> None:
        self.seen: dict[str, RequestContext | None] = {}

    def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        self.seen["handshake"] = current_request()
        self.seen["session"] = session.context
        return True

    def can_publish(self, session: ServerSession, channel: str, message: dict[str, Any]) -> bool:
        self.seen["publish"] = current_request()
        return True


def serve(policy: Recording, **kw: Any) -> ServerThread:
    endpoint = Endpoint(server=BayeuxServer(Settings(timeout=2000), policy=policy))
    return ServerThread(endpoint=endpoint, **kw).start()


def raw_post(url: str, body: str, lines: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """A POST with header lines as given (repeated ones kept on their own lines)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        conn.putrequest("POST", f"{parts.path}?x=1&x=2")
        for name, value in [("Content-Type", "application/json"), *lines]:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body.encode())
        replies: list[dict[str, Any]] = json.loads(conn.getresponse().read())
        return replies
    finally:
        conn.close()


def test_long_polling_hooks_see_their_request() -> None:
    policy = Recording()
    with serve(policy) as server:
        (reply,) = raw_post(
            server.url,
            json.dumps([handshake_message()]),
            [
                ("Authorization", "Bearer token-1"),
                ("Cookie", "login=alice; theme=dark"),
                ("X-Multi", "a"),
                ("X-Multi", "b"),
            ],
        )
        assert reply["successful"] is True
        context = policy.seen["handshake"]
        assert context is not None and policy.seen["session"] is context
        assert context.connection_type == "long-polling" and context.method == "POST"
        assert context.header("AUTHORIZATION") == "Bearer token-1"
        assert context.cookie("login") == "alice" and context.cookies["theme"] == "dark"
        assert context.header_values("x-multi") == ["a", "b"]
        assert context.parameters("x") == ["1", "2"] and context.parameter("x") == "2"
        assert context.path == "/cometd" and context.scheme == "http"
        assert context.remote_address == "127.0.0.1" and context.local_address == "127.0.0.1"
        assert context.host is not None and context.client_certificate is None
        if server.embedded:  # the application's own handler, for get_current_user()
            assert isinstance(context.handler, tornado.web.RequestHandler)
        else:
            assert context.handler is None
        # Each request its own: a publish on the next request sees that one.
        client_id = reply["clientId"]
        published = post_json(
            server.url,
            [{"channel": "/a", "clientId": client_id, "data": 1}],
            headers={"X-Request": "second"},
        ).json()
        assert published[0]["successful"] is True
        second = policy.seen["publish"]
        assert second is not None and second.header("x-request") == "second"
        assert server.call(lambda: server.endpoint.server.sessions[client_id].context) is second


def test_callback_polling_hooks_see_their_request() -> None:
    policy = Recording()
    with serve(policy) as server:
        message = quote(json.dumps([handshake_message("callback-polling")]))
        answer = request(
            f"{server.url}?jsonp=cb&message={message}",
            method="GET",
            headers={"Cookie": "login=bob"},
        )
        assert answer.status == 200
        context = policy.seen["handshake"]
        assert context is not None and context.connection_type == "callback-polling"
        assert context.method == "GET" and context.cookie("login") == "bob"
        assert context.parameter("jsonp") == "cb"


def test_a_websocket_keeps_its_upgrade_request_for_every_batch() -> None:
    policy = Recording()
    with serve(policy) as server:

        async def run() -> None:
            ws = await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(
                    ws_url(server), headers={"Cookie": "login=carol", "Authorization": "Bearer w"}
                )
            )
            await ws.write_message(json.dumps([handshake_message("websocket")]))
            (reply,) = json.loads(await next_frame(ws, 5))
            publish = {"channel": "/b", "clientId": reply["clientId"], "data": 1}
            await ws.write_message(json.dumps([publish]))
            await next_frame(ws, 5)
            ws.close()

        asyncio.run(run())
        handshake, publish = policy.seen["handshake"], policy.seen["publish"]
        assert handshake is not None and handshake is publish
        assert handshake.connection_type == "websocket"
        assert handshake.cookie("login") == "carol"
        assert handshake.header("authorization") == "Bearer w"


def test_an_event_stream_gives_its_session_its_request() -> None:
    policy = Recording()
    with serve(policy) as server:
        client_id = post_json(server.url, [handshake_message("eventsource")]).json()[0]["clientId"]
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        conn.request(
            "GET",
            f"{parts.path}/{client_id}",
            headers={
                "Accept": "text/event-stream",
                "Cookie": "login=dave",
                "Origin": server.origin,
            },
        )
        assert conn.getresponse().status == 200
        context = server.call(lambda: server.endpoint.server.sessions[client_id].context)
        conn.close()
        assert context is not None and context.connection_type == "eventsource"
        assert context.cookie("login") == "dave"


def test_services_and_listeners_see_the_request_that_carried_the_message() -> None:
    policy = Recording()
    seen: list[tuple[str, str | None]] = []

    def record(hook: str, context: RequestContext | None) -> None:
        seen.append((hook, context.header("x-which") if context is not None else None))

    def service(request: Any) -> str:
        record("service", request.context)
        return "ok"

    def authorizer(*args: Any) -> Authorization:
        record("authorizer", current_request())
        return Authorization.GRANT

    with serve(policy) as server:
        core = server.endpoint.server
        core.add_service("/service/who", service)
        core.add_message_listener("/chat/**", lambda *a: record("listener", current_request()))
        core.add_authorizer("/chat/**", authorizer)
        client_id = post_json(server.url, [handshake_message()]).json()[0]["clientId"]
        for channel in ("/service/who", "/chat/room"):
            post_json(
                server.url,
                [{"channel": channel, "clientId": client_id, "data": 1}],
                headers={"X-Which": channel},
            )
    assert ("service", "/service/who") in seen
    assert ("listener", "/chat/room") in seen and ("authorizer", "/chat/room") in seen
    assert all(
        header == ("/service/who" if hook == "service" else "/chat/room") for hook, header in seen
    )
    assert current_request() is None  # outside a request there is none


def test_the_tls_client_certificate_is_in_the_context(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    clients = trustme.CA()
    ca_file = tmp_path / "clients.pem"
    clients.cert_pem.write_to_path(str(ca_file))
    policy = Recording()
    with serve(policy, ssl_options=tls_context(str(chain), str(key), str(ca_file))) as server:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        clients.issue_cert("alice@example.com").configure_cert(context)
        parts = urlsplit(server.url)
        conn = http.client.HTTPSConnection("127.0.0.1", parts.port, context=context, timeout=10)
        conn.request(
            "POST",
            parts.path,
            json.dumps([handshake_message()]),
            {"Content-Type": "application/json"},
        )
        assert json.loads(conn.getresponse().read())[0]["successful"] is True
        conn.close()
    seen = policy.seen["handshake"]
    assert seen is not None and seen.scheme == "https"
    assert seen.client_certificate is not None
    assert "alice@example.com" in json.dumps(seen.client_certificate)


def test_behind_a_trusted_proxy_the_scheme_is_the_proxys() -> None:
    # The standalone layer reads X-Forwarded-Proto (else X-Scheme) only with --xheaders.
    from bayeux.connection.listener import Listener

    endpoint = Endpoint(Settings())
    trusting = Listener(endpoint, "/cometd", xheaders=True)
    assert trusting.scheme({"x-forwarded-proto": "https"}) == "https"
    assert trusting.scheme({"x-scheme": "https"}) == "https"
    assert trusting.scheme({"x-forwarded-proto": "gopher"}) == "http"
    assert Listener(endpoint, "/cometd").scheme({"x-forwarded-proto": "https"}) == "http"
    assert RequestContext is CoreRequestContext
