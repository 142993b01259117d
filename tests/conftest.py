from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from bayeux import Endpoint, Settings
from bayeux.testing import ServerThread

from .redisproc import RedisServer


@pytest.fixture(params=["standalone", "embedded"])
def both_layers(request):  # type: ignore[no-untyped-def]
    """Runs a test against the standalone connection layer and against the endpoint mounted
    in a Tornado Application: the transports' semantics must not depend on who parses HTTP.
    Modules opt in with `pytestmark = pytest.mark.usefixtures("both_layers")`."""
    ServerThread.embedded_by_default = request.param == "embedded"
    try:
        yield request.param
    finally:
        ServerThread.embedded_by_default = False


@pytest.fixture
def live(both_layers):  # type: ignore[no-untyped-def]
    """An endpoint on a background IOLoop with short timeouts."""
    endpoint = Endpoint(
        Settings(timeout=2000, max_interval=3000, sweep_period=100, max_message_size=64 * 1024),
        allowed_origins=("http://good.example",),
    )
    with ServerThread(endpoint=endpoint) as server:
        yield server


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):  # type: ignore[no-untyped-def]
        return json.loads(self.body)


def request(
    url: str,
    method: str = "POST",
    body: bytes | str | None = None,
    headers: dict | None = None,
    path: str = "",
    timeout: float = 10,
) -> Response:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        target = parts.path + path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


def post_json(url: str, messages, **kw) -> Response:  # type: ignore[no-untyped-def]
    return request(
        url, body=json.dumps(messages), headers={"Content-Type": "application/json"}, **kw
    )


def handshake(url: str, transport: str = "long-polling") -> str:
    reply = post_json(
        url,
        [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": [transport]}],
    ).json()
    assert reply[0]["successful"] is True
    return reply[0]["clientId"]


@pytest.fixture
def redis_server():  # type: ignore[no-untyped-def]
    server = RedisServer()
    server.start()
    yield server
    server.stop()
