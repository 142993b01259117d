"""Plain HTTP requests to a server under test (the standard library's client)."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
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
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        target = parts.path + path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


def post_json(url: str, messages, headers: dict | None = None, **kw) -> Response:
    sent = {"Content-Type": "application/json", **(headers or {})}
    return request(url, body=json.dumps(messages), headers=sent, **kw)


def handshake(url: str, transport: str = "long-polling") -> str:
    reply = post_json(
        url,
        [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": [transport]}],
    ).json()
    assert reply[0]["successful"] is True
    return reply[0]["clientId"]
