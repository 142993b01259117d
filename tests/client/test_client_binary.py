"""bayeux.client's BinaryExtension against a server with --binary-extension, on every transport
the client offers (JSON and msgpack over WebSocket, long-polling): bytes published arrive as
bytes, `last` and `meta` kept; the server's hooks see bytes; bytes the server sends arrive as
bytes; and a client without the extension sees the Z85 text CometD's clients exchange."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from bayeux import Endpoint, Settings
from bayeux.client import BinaryExtension, Client
from bayeux.core import z85
from bayeux.testing import ServerThread
from tests.helpers.aio import run, until

TRANSPORTS = {
    "websocket-json": (["websocket"], False),
    "websocket-msgpack": (["websocket"], True),
    "long-polling": (["long-polling"], False),
}
PAYLOAD = random.Random(7).randbytes(10_003)


@pytest.fixture(scope="module")
def server():
    endpoint = Endpoint(Settings(binary_extension=True, timeout=1500))
    seen: list[Any] = []
    endpoint.server.channel("/files/*").add_listener(
        lambda session, channel, message: seen.append(message["data"])
    )
    endpoint.server.add_service(
        "/service/reverse", lambda request: {"data": request.data["data"][::-1], "last": True}
    )
    with ServerThread(endpoint=endpoint) as running:
        running.seen = seen  # type: ignore[attr-defined]
        yield running


def client(server: ServerThread, kind: str, *extensions: Any) -> Client:
    transports, msgpack = TRANSPORTS[kind]
    return Client(server.url, transports=transports, msgpack=msgpack, extensions=extensions)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_bytes_go_and_come_back_as_bytes(server, kind: str) -> None:
    async def scenario() -> None:
        received: list[dict] = []
        async with (
            client(server, kind, BinaryExtension()) as subscriber,
            client(server, kind, BinaryExtension()) as publisher,
        ):
            await subscriber.subscribe(f"/files/{kind}", received.append)
            data = {"data": PAYLOAD, "last": False, "meta": {"name": "chunk-1"}}
            reply = await publisher.publish(f"/files/{kind}", data)
            assert reply["successful"] is True
            assert data["data"] is PAYLOAD  # the application's object is not changed
            await until(lambda: len(received) == 1)
            assert received[0]["data"] == data
            assert server.seen[-1] == data  # the server's listener saw bytes too
            answer = await publisher.remote_call("/service/reverse", {"data": b"\x01\x02\x03"})
            assert answer == {"data": b"\x03\x02\x01", "last": True}

    run(scenario)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_bytes_the_server_publishes_arrive_as_bytes(server, kind: str) -> None:
    async def scenario() -> None:
        received: list[dict] = []
        async with client(server, kind, BinaryExtension()) as subscriber:
            await subscriber.subscribe("/server/files", received.append)
            server.call(server.endpoint.server.publish, "/server/files", {"data": PAYLOAD})
            await until(lambda: len(received) == 1)
            assert received[0]["data"] == {"data": PAYLOAD}

    run(scenario)


def test_without_the_extension_a_client_sees_the_z85_text() -> None:
    async def scenario() -> None:
        with ServerThread(Settings(binary_extension=True)) as running:
            received: list[dict] = []
            async with (
                Client(running.url) as plain,
                Client(running.url, extensions=[BinaryExtension()]) as sender,
            ):
                await plain.subscribe("/files", received.append)
                await sender.publish("/files", {"data": PAYLOAD})
                await until(lambda: len(received) == 1)
            assert received[0]["data"] == {"data": z85.encode(PAYLOAD)}
            assert received[0]["ext"] == {"binary": {}}

    run(scenario)


def test_text_that_does_not_decode_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    binary = BinaryExtension()
    with caplog.at_level(logging.WARNING, logger="bayeux.client"):
        kept = binary.incoming(
            {"channel": "/files", "data": {"data": "Hello World"}, "ext": {"binary": {}}}
        )
    assert kept is None
    assert "binary message on /files dropped" in caplog.text
    meta = {"channel": "/meta/connect", "ext": {"binary": {}}, "successful": True}
    assert binary.incoming(dict(meta)) == meta
    assert binary.outgoing({"channel": "/meta/handshake", "ext": {}}) == {
        "channel": "/meta/handshake",
        "ext": {},
    }
