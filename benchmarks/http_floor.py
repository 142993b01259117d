"""The floor of the HTTP path: what a Python server costs per long-polling request when it does
no Bayeux work at all. Two servers parse each request with httptools and answer it with a
fixed JSON reply (a successful handshake for /handshake, a successful connect otherwise),
so that the load generator of benchmarks/requests.py runs against them unchanged:

- floor-tornado: Tornado's TCPServer and IOStream (the connection layer's own stack)
- floor-asyncio: an asyncio Protocol on the same event loop, without IOStream

benchmarks/requests.py runs them side by side with the real servers
(`--server floor-tornado --server floor-asyncio`): requests per server CPU-second here bound
what any server built on that stack can reach on this machine.

    .venv/bin/python benchmarks/http_floor.py tornado 8080
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httptools
import orjson
import tornado.iostream
import tornado.tcpserver

HANDSHAKE = orjson.dumps(
    [
        {
            "channel": "/meta/handshake",
            "successful": True,
            "clientId": "0" * 40,
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
        }
    ]
)
SUCCESS = orjson.dumps([{"channel": "/meta/connect", "successful": True}])


def response(url: bytes, body: bytes) -> bytes:
    """The reply to one request; the body is decoded as a server would (and dropped)."""
    orjson.loads(body)
    reply = HANDSHAKE if url.endswith(b"/handshake") else SUCCESS
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply)
    )


class Requests:
    """httptools callbacks collecting complete requests as their answers, in order."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.answers: list[bytes] = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.answers.append(response(self.url, b"".join(self.body)))
        self.url, self.body = b"", []


class TornadoFloor(tornado.tcpserver.TCPServer):
    async def handle_stream(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        stream.set_nodelay(True)
        requests = Requests()
        try:
            while True:
                requests.parser.feed_data(await stream.read_bytes(65536, partial=True))
                if requests.answers:
                    answers, requests.answers = requests.answers, []
                    await stream.write(b"".join(answers))
        except tornado.iostream.StreamClosedError:
            pass


class AsyncioFloor(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.requests = Requests()

    def data_received(self, data: bytes) -> None:
        requests = self.requests
        requests.parser.feed_data(data)
        if requests.answers:
            answers, requests.answers = requests.answers, []
            self.transport.write(b"".join(answers))


async def serve(kind: str, port: int) -> None:
    if kind == "tornado":
        TornadoFloor().listen(port, "127.0.0.1")
    elif kind == "asyncio":
        await asyncio.get_running_loop().create_server(AsyncioFloor, "127.0.0.1", port)
    else:
        raise SystemExit("usage: http_floor.py tornado|asyncio PORT")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
