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


def serve(policy: SecurityPolicy, **kw: Any) -> ServerThread:
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


@pytest.mark.parametrize("repeated", [False, True])
def test_hooks_see_every_header_line_in_order(repeated: bool) -> None:
    policy = Recording()
    sent = [("X-First", "1"), ("X-Multi" if repeated else "X-Second", "2"), ("X-Multi", "3")]
    with serve(policy) as server:
        (reply,) = raw_post(server.url, json.dumps([handshake_message()]), sent)
        assert reply["successful"] is True
        context = policy.seen["handshake"]
        assert context is not None
        names = [name for name, _ in context.headers]
        assert names[-5:-1] == [
            "content-type",
            "x-first",
            "x-multi" if repeated else "x-second",
            "x-multi",
        ]
        assert [value for _, value in context.headers][-4:-1] == ["1", "2", "3"]
        assert context.header_values("x-multi") == (["2", "3"] if repeated else ["3"])


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


# ------------------------------------------------------------------- the response's headers


class LoggingIn(SecurityPolicy):
    """A handshake policy that logs the client in: it sets the application's cookie and a
    header on the HTTP response carrying the handshake reply, where there is one."""

    def __init__(self) -> None:
        self.responses: list[object] = []
        self.errors: list[str] = []

    async def can_handshake(self, session: ServerSession, message: dict[str, Any]) -> bool:
        context = current_request()
        assert context is not None
        response = context.response
        self.responses.append(response)
        if response is None:
            return True
        response.set_cookie("app_session", "token-1", max_age=3600)
        response.add("X-App-User", "alice")
        for bad in (("X-Split", "a\r\nSet-Cookie: evil=1"), ("Content-Length", "1"), ("", "x")):
            try:
                response.add(*bad)
            except ValueError as exc:
                self.errors.append(str(exc))
        return (message.get("ext") or {}).get("deny") is not True


def set_cookies(response: Any) -> list[str]:
    return response.headers.get_all("Set-Cookie") or []


def test_a_handshake_policy_adds_cookies_and_headers_to_the_polling_response() -> None:
    policy = LoggingIn()
    with serve(policy) as server:
        answer = post_json(server.url, [handshake_message("long-polling")])
        assert answer.json()[0]["successful"] is True
        cookies = set_cookies(answer)
        assert "app_session=token-1; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax" in cookies
        assert any(c.startswith("BAYEUX_BROWSER=") for c in cookies)  # both kept
        assert answer.headers["X-App-User"] == "alice"
        assert "X-Split" not in answer.headers and answer.headers["Content-Length"] != "1"
        assert len(policy.errors) == 3
        # A refused handshake's response carries them too (the policy decides what to add).
        deny = {**handshake_message("long-polling"), "ext": {"deny": True}}
        denied = post_json(server.url, [deny])
        assert denied.json()[0]["successful"] is False and denied.headers["X-App-User"] == "alice"
        # Callback-polling answers over HTTP too.
        message = quote(json.dumps([handshake_message("callback-polling")]))
        jsonp = request(server.url, "GET", path=f"?jsonp=cb&message={message}")
        assert jsonp.status == 200 and jsonp.headers["X-App-User"] == "alice"


def test_a_websocket_handshake_has_no_response_to_add_to() -> None:
    policy = LoggingIn()
    with serve(policy) as server:

        async def scenario() -> dict[str, Any]:
            ws = await tornado.websocket.websocket_connect(ws_url(server))
            try:
                ws.write_message(json.dumps([handshake_message("websocket")]))
                return json.loads(await next_frame(ws, 5))[0]
            finally:
                ws.close()

        assert asyncio.run(scenario())["successful"] is True
        assert policy.responses == [None]


def test_cookie_and_header_values_are_checked() -> None:
    from bayeux import ResponseHeaders

    headers = ResponseHeaders(https=True)
    headers.set_cookie("a", "b")
    assert headers.lines == [("Set-Cookie", "a=b; Path=/; Secure; HttpOnly; SameSite=Lax")]
    headers.set_cookie("c", "d", same_site="None", http_only=False, path=None)
    assert headers.lines[-1] == ("Set-Cookie", "c=d; Secure; SameSite=None")
    for name, value, kw in (
        ("bad name", "x", {}),
        ("a", "x;y", {}),
        ("a", "x y", {}),
        ("a", "x", {"domain": "x;Secure"}),
        ("a", "x", {"max_age": -1}),
        ("a", "x", {"same_site": "Sometimes"}),
    ):
        with pytest.raises(ValueError):
            headers.set_cookie(name, value, **kw)
    for name in ("Transfer-Encoding", "Access-Control-Allow-Origin", "Cache-Control"):
        with pytest.raises(ValueError, match="transport"):
            headers.add(name, "x")
    with pytest.raises(ValueError):
        headers.add("X-Bin", "caf\u00e9")
    while len(headers.lines) < ResponseHeaders.MAX_COUNT:
        headers.add("X-Fill", "x")
    with pytest.raises(ValueError, match="at most"):
        headers.add("X-One-More", "x")
    big = ResponseHeaders(https=False)
    with pytest.raises(ValueError, match="at most"):
        big.add("X-Big", "x" * ResponseHeaders.MAX_BYTES)
